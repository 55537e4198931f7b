//! EC2 `DescribeInstances` answers rewritten to the fleet's loopback addresses.
//!
//! moto gives every instance a private 10.x address (and a public 54.x one);
//! nothing here may send traffic there. Each emulated instance serves on its
//! own 127.0.0.N, so inside every `instancesSet/item` of the answer:
//! - every element whose text is an IPv4 address (`privateIpAddress`,
//!   `ipAddress`, `publicIp`, the network interfaces' copies, ...) gets the
//!   instance's loopback address;
//! - `privateDnsName` becomes `ip-127-0-0-N.ec2.internal`; `dnsName` and
//!   `publicDnsName` become empty (there is no public name);
//! - an instance with no address (terminated / shutting-down, as on AWS, or one
//!   the address book does not know) loses those elements entirely.
//!
//! The XML is moto's (well-formed, no CDATA or comments inside): a small tag
//! scanner is enough and keeps everything else byte for byte.

use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Open,
    Close,
    Empty,
    Other,
}

#[derive(Debug)]
enum Token<'a> {
    Tag {
        raw: &'a str,
        name: &'a str,
        kind: Kind,
    },
    Text(&'a str),
}

fn tokenize(xml: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut rest = xml;
    while !rest.is_empty() {
        if let Some(stripped) = rest.strip_prefix('<') {
            let end = stripped.find('>').map(|i| i + 2).unwrap_or(rest.len());
            let raw = &rest[..end];
            let inner = raw.trim_start_matches('<').trim_end_matches('>');
            let (kind, name_part) = if inner.starts_with('?') || inner.starts_with('!') {
                (Kind::Other, "")
            } else if let Some(n) = inner.strip_prefix('/') {
                (Kind::Close, n)
            } else if let Some(n) = inner.strip_suffix('/') {
                (Kind::Empty, n)
            } else {
                (Kind::Open, inner)
            };
            let name = name_part
                .split(|c: char| c.is_whitespace())
                .next()
                .unwrap_or("");
            tokens.push(Token::Tag { raw, name, kind });
            rest = &rest[end..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            tokens.push(Token::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    tokens
}

/// One `instancesSet/item`: token range and what it says about itself.
struct InstanceBlock {
    start: usize,
    end: usize,
    instance_id: Option<String>,
    state: Option<String>,
}

fn instance_blocks(tokens: &[Token<'_>]) -> Vec<InstanceBlock> {
    let mut blocks = Vec::new();
    let mut stack: Vec<&str> = Vec::new();
    let mut current: Option<(usize, usize)> = None; // (token index, depth of the item)
    let mut instance_id = None;
    let mut state = None;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Tag {
                name,
                kind: Kind::Open,
                ..
            } => {
                if current.is_none()
                    && *name == "item"
                    && stack.last().copied() == Some("instancesSet")
                {
                    current = Some((i, stack.len() + 1));
                    instance_id = None;
                    state = None;
                }
                stack.push(name);
            }
            Token::Tag {
                kind: Kind::Close, ..
            } => {
                stack.pop();
                if let Some((start, depth)) = current {
                    if stack.len() + 1 == depth {
                        blocks.push(InstanceBlock {
                            start,
                            end: i,
                            instance_id: instance_id.take(),
                            state: state.take(),
                        });
                        current = None;
                    }
                }
            }
            Token::Text(text) => {
                if let Some((_, depth)) = current {
                    // instanceId is a direct child of the item;
                    // instanceState/name its state.
                    if stack.len() == depth + 1 && stack.last().copied() == Some("instanceId") {
                        instance_id = Some(text.trim().to_string());
                    }
                    if stack.len() == depth + 2
                        && stack[depth] == "instanceState"
                        && stack.last().copied() == Some("name")
                    {
                        state = Some(text.trim().to_string());
                    }
                }
            }
            _ => {}
        }
    }
    blocks
}

const IP_ELEMENTS: &[&str] = &["privateIpAddress", "ipAddress", "publicIp"];
const PUBLIC_NAME_ELEMENTS: &[&str] = &["dnsName", "publicDnsName"];

/// Rewrites a DescribeInstances XML answer; `address_of` gives the loopback
/// address of an instance id (None: no address).
pub fn rewrite_describe_instances(
    xml: &str,
    address_of: impl Fn(&str) -> Option<Ipv4Addr>,
) -> String {
    let tokens = tokenize(xml);
    let blocks = instance_blocks(&tokens);
    let mut out = String::with_capacity(xml.len());
    let mut block_iter = blocks.iter().peekable();
    let mut i = 0;
    let mut stack: Vec<&str> = Vec::new();
    let mut address: Option<Ipv4Addr> = None;
    let mut in_block: Option<&InstanceBlock> = None;
    while i < tokens.len() {
        if in_block.is_none() {
            if let Some(block) = block_iter.peek() {
                if block.start == i {
                    let block = block_iter.next().expect("peeked");
                    let gone = matches!(
                        block.state.as_deref(),
                        Some("terminated") | Some("shutting-down")
                    );
                    address = match (&block.instance_id, gone) {
                        (Some(id), false) => address_of(id),
                        _ => None,
                    };
                    in_block = Some(block);
                }
            }
        }
        let token = &tokens[i];
        let Some(block) = in_block else {
            push_raw(&mut out, token);
            i += 1;
            continue;
        };
        match token {
            Token::Tag {
                raw,
                name,
                kind: Kind::Open,
            } if IP_ELEMENTS.contains(name)
                || *name == "privateDnsName"
                || PUBLIC_NAME_ELEMENTS.contains(name) =>
            {
                // A simple element: <name>text</name>.
                let (text, close) = match (tokens.get(i + 1), tokens.get(i + 2)) {
                    (
                        Some(Token::Text(t)),
                        Some(Token::Tag {
                            kind: Kind::Close, ..
                        }),
                    ) => (*t, i + 2),
                    (
                        Some(Token::Tag {
                            kind: Kind::Close, ..
                        }),
                        _,
                    ) => ("", i + 1),
                    _ => {
                        // Not a simple element: keep it, walk inside it.
                        out.push_str(raw);
                        stack.push(name);
                        i += 1;
                        continue;
                    }
                };
                let replacement = replacement_for(name, text, address);
                if let Some(value) = replacement {
                    out.push_str(raw);
                    out.push_str(&value);
                    out.push_str(&format!("</{name}>"));
                }
                i = close + 1;
                continue;
            }
            Token::Tag {
                raw,
                name,
                kind: Kind::Open,
            } => {
                out.push_str(raw);
                stack.push(name);
            }
            Token::Tag {
                raw,
                kind: Kind::Close,
                ..
            } => {
                out.push_str(raw);
                stack.pop();
            }
            Token::Text(text) => {
                // Any other element carrying an address (defence in depth).
                match text.trim().parse::<Ipv4Addr>() {
                    Ok(ip) if !ip.is_loopback() => {
                        if let Some(a) = address {
                            out.push_str(&a.to_string());
                        }
                    }
                    _ => out.push_str(text),
                }
            }
            other => push_raw(&mut out, other),
        }
        if i == block.end {
            in_block = None;
            address = None;
        }
        i += 1;
    }
    out
}

fn push_raw(out: &mut String, token: &Token<'_>) {
    match token {
        Token::Tag { raw, .. } => out.push_str(raw),
        Token::Text(text) => out.push_str(text),
    }
}

/// The new text of an address/name element, or None to drop the element.
fn replacement_for(name: &str, text: &str, address: Option<Ipv4Addr>) -> Option<String> {
    if PUBLIC_NAME_ELEMENTS.contains(&name) {
        return if text.is_empty() || address.is_some() {
            Some(String::new())
        } else {
            None
        };
    }
    let address = address?;
    if name == "privateDnsName" {
        let [a, b, c, d] = address.octets();
        return Some(format!("ip-{a}-{b}-{c}-{d}.ec2.internal"));
    }
    if text.trim().is_empty() {
        return Some(String::new());
    }
    Some(address.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOTO_ANSWER: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><reservationSet><item><reservationId>r-1</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet><item><blockDeviceMapping><item><deviceName>/dev/sda1</deviceName></item></blockDeviceMapping><networkInterfaceSet><item><association><ipOwnerId>123456789012</ipOwnerId><publicDnsName>ip-54-214-22-164.ec2.internal</publicDnsName><publicIp>54.214.22.164</publicIp></association><privateDnsName>ip-10-243-239-42.ec2.internal</privateDnsName><privateIpAddress>10.243.239.42</privateIpAddress><privateIpAddressesSet><item><primary>true</primary><privateIpAddress>10.243.239.42</privateIpAddress></item></privateIpAddressesSet></item></networkInterfaceSet><instanceId>i-aaa</instanceId><instanceState><code>16</code><name>running</name></instanceState><privateDnsName>ip-10-243-239-42.ec2.internal</privateDnsName><dnsName>ec2-54-214-22-164.compute-1.amazonaws.com</dnsName><reason/><subnetId>subnet-1</subnetId><privateIpAddress>10.243.239.42</privateIpAddress><ipAddress>54.214.22.164</ipAddress></item><item><instanceId>i-bbb</instanceId><instanceState><code>48</code><name>terminated</name></instanceState><privateDnsName>ip-10-1-2-3.ec2.internal</privateDnsName><privateIpAddress>10.1.2.3</privateIpAddress></item><item><instanceId>i-ccc</instanceId><instanceState><code>16</code><name>running</name></instanceState><privateIpAddress>10.9.9.9</privateIpAddress><tagSet><item><key>Name</key><value>x</value></item></tagSet></item></instancesSet></item></reservationSet></DescribeInstancesResponse>"#;

    fn rewritten() -> String {
        rewrite_describe_instances(MOTO_ANSWER, |id| match id {
            "i-aaa" => Some(Ipv4Addr::new(127, 0, 0, 2)),
            "i-bbb" => Some(Ipv4Addr::new(127, 0, 0, 3)),
            _ => None,
        })
    }

    #[test]
    fn no_private_or_public_address_survives() {
        let out = rewritten();
        assert!(!out.contains("10."), "{out}");
        assert!(!out.contains("54.214"), "{out}");
        assert!(!out.contains("ip-10-"), "{out}");
    }

    #[test]
    fn known_instances_get_their_loopback_address() {
        let out = rewritten();
        assert!(out.contains("<instanceId>i-aaa</instanceId>"));
        assert_eq!(out.matches("127.0.0.2").count(), 5, "{out}");
        assert!(out.contains("<privateDnsName>ip-127-0-0-2.ec2.internal</privateDnsName>"));
        assert!(out.contains(
            "<privateIpAddress>127.0.0.2</privateIpAddress><ipAddress>127.0.0.2</ipAddress>"
        ));
        assert!(out.contains("<dnsName></dnsName>"));
    }

    #[test]
    fn terminated_and_unknown_instances_have_no_address() {
        let out = rewritten();
        assert!(
            !out.contains("127.0.0.3"),
            "terminated instance kept an address: {out}"
        );
        assert!(out.contains("<instanceId>i-bbb</instanceId><instanceState><code>48</code><name>terminated</name></instanceState></item>"), "{out}");
        assert!(out.contains("<instanceId>i-ccc</instanceId><instanceState><code>16</code><name>running</name></instanceState><tagSet>"), "{out}");
    }

    #[test]
    fn everything_else_is_kept_byte_for_byte() {
        let out = rewrite_describe_instances(MOTO_ANSWER, |_| None);
        assert!(out
            .starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<DescribeInstancesResponse"));
        assert!(out.contains(
            "<reservationId>r-1</reservationId><ownerId>123456789012</ownerId><groupSet/>"
        ));
        assert!(out.contains("<tagSet><item><key>Name</key><value>x</value></item></tagSet>"));
        let untouched = "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>";
        assert_eq!(rewrite_describe_instances(untouched, |_| None), untouched);
    }

    #[test]
    fn the_sdk_reads_the_rewritten_answer() {
        // Parse it back as the Rust SDK's XML parser would see it: well-formed.
        let out = rewritten();
        let opens = out.matches("<item>").count();
        let closes = out.matches("</item>").count();
        assert_eq!(opens, closes);
    }
}
