//! RELIABILITY.md's section on the AWS behaviours the local cloud emulates,
//! with their sources: written by the test run from the one table in the
//! local cloud's code (`local_cloud::emulated::EMULATED`), which the README's
//! emulation table must equal (checked by the local cloud's unit tests).

#[test]
fn emulated_behaviours_are_written_to_reliability_with_their_sources() {
    let body = local_cloud::emulated::reliability_section();
    let path = greenlight_e2e::reliability::write_section("emulated", &body)
        .unwrap_or_else(|e| panic!("RELIABILITY.md cannot be written: {e}"));
    let written = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()));
    for e in local_cloud::emulated::EMULATED {
        assert!(
            written.contains(e.behaviour)
                && written.contains(e.source.split(", https").next().unwrap_or(e.source)),
            "{} is missing from {}",
            e.behaviour,
            path.display()
        );
    }
}
