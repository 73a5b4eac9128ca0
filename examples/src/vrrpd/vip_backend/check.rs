//! `vip_backend` as written, checked: every key belongs to one kind (and mode), AWS ids carry
//! their prefixes, and the instance around the backend suits it (IPv4 for AWS, one address per
//! Elastic IP, unicast in a VPC).

use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::time::Duration;

use ip_manager::{AwsMode, DEFAULT_TIMEOUT};
use serde::Deserialize;
use toml::Spanned;

use super::{AwsBackend, ExecBackend, VipBackend};
use crate::diagnostics::text_where;
use crate::duration;
use crate::vrrpd::config::Report;

/// The inline table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VipBackendToml {
    kind: Spanned<String>,
    mode: Option<Spanned<String>>,
    allocation_id: Option<Spanned<String>>,
    route_table_id: Option<Spanned<String>>,
    network_interface_id: Option<Spanned<String>>,
    private_ip: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    endpoint: Option<Spanned<String>>,
    add: Option<Spanned<String>>,
    remove: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

/// What the instance around the backend holds, for the cross-checks.
pub(crate) struct Around<'a> {
    /// The instance's index in the file.
    pub(crate) index: usize,
    /// Its checked virtual addresses.
    pub(crate) virtual_addresses: &'a [(IpAddr, u8)],
    /// Where `virtual_addresses` is written.
    pub(crate) virtual_addresses_span: Range<usize>,
    /// Whether it has unicast peers.
    pub(crate) unicast: bool,
    /// Where `garp` is written, if it is.
    pub(crate) garp: Option<Range<usize>>,
}

type Field<'a> = (&'static str, &'a Option<Spanned<String>>);

/// Checks `t`; on a mistake reports it and returns the default (the instance is dropped anyway).
pub(crate) fn check(
    r: &mut Report<'_>,
    t: &Spanned<VipBackendToml>,
    around: &Around<'_>,
) -> VipBackend {
    let b = t.get_ref();
    let i = around.index;
    let key = |k: &str| format!("instance[{i}].vip_backend.{k}");
    let kind = b.kind.get_ref().as_str();
    let aws_keys: [Field<'_>; 7] = [
        ("mode", &b.mode),
        ("allocation_id", &b.allocation_id),
        ("route_table_id", &b.route_table_id),
        ("network_interface_id", &b.network_interface_id),
        ("private_ip", &b.private_ip),
        ("region", &b.region),
        ("endpoint", &b.endpoint),
    ];
    let exec_keys: [Field<'_>; 3] = [
        ("add", &b.add),
        ("remove", &b.remove),
        ("timeout", &b.timeout),
    ];
    let misplaced = |r: &mut Report<'_>, keys: &[Field<'_>], owner: &str| {
        for (k, v) in keys {
            if let Some(v) = v {
                r.at(
                    v.span(),
                    key(k),
                    format!(
                        "is only for kind = \"{owner}\", and this backend is kind = \"{kind}\""
                    ),
                );
            }
        }
    };
    let not_announced = |r: &mut Report<'_>| {
        if let Some(span) = &around.garp {
            r.warn(
                span.clone(),
                format!("instance[{i}].garp"),
                format!("ignored: only kind = \"netlink\" announces addresses, and vip_backend is kind = \"{kind}\""),
            );
        }
    };
    match kind {
        "netlink" => {
            misplaced(r, &aws_keys, "aws");
            misplaced(r, &exec_keys, "exec");
            VipBackend::Netlink
        }
        "aws" => {
            misplaced(r, &exec_keys, "exec");
            not_announced(r);
            aws(r, t, around).map_or(VipBackend::Netlink, VipBackend::Aws)
        }
        "exec" => {
            misplaced(r, &aws_keys, "aws");
            not_announced(r);
            exec(r, t, i).map_or(VipBackend::Netlink, VipBackend::Exec)
        }
        other => {
            r.at(
                b.kind.span(),
                key("kind"),
                format!("{other:?}: one of \"netlink\", \"aws\", \"exec\""),
            );
            VipBackend::Netlink
        }
    }
}

fn aws(r: &mut Report<'_>, t: &Spanned<VipBackendToml>, around: &Around<'_>) -> Option<AwsBackend> {
    let b = t.get_ref();
    let i = around.index;
    let key = |k: &str| format!("instance[{i}].vip_backend.{k}");
    let before = r.errors.len();
    let only_for = |r: &mut Report<'_>, (k, v): Field<'_>, mode: &str| {
        if let Some(v) = v {
            r.at(v.span(), key(k), format!("is only for mode = \"{mode}\""));
        }
    };
    // What the modes with an Elastic IP need, and what is only for route-table.
    let allocation_id = |r: &mut Report<'_>| {
        aws_id(
            r,
            t,
            i,
            ("allocation_id", &b.allocation_id),
            "eipalloc-",
            true,
        )
    };
    let no_route_table = |r: &mut Report<'_>| {
        only_for(r, ("route_table_id", &b.route_table_id), "route-table");
    };
    let mode = match b.mode.as_ref().map(|m| m.get_ref().as_str()) {
        None => {
            r.at(
                t.span(),
                key("mode"),
                "missing: mode = \"elastic-ip\" (with allocation_id), \"secondary-ip\", \"elastic-ip-on-secondary\" (with allocation_id), or \"route-table\" (with route_table_id)".into(),
            );
            None
        }
        Some("elastic-ip") => {
            no_route_table(r);
            allocation_id(r).map(|allocation_id| AwsMode::ElasticIp { allocation_id })
        }
        Some("secondary-ip") => {
            only_for(r, ("allocation_id", &b.allocation_id), "elastic-ip");
            only_for(r, ("private_ip", &b.private_ip), "elastic-ip");
            no_route_table(r);
            Some(AwsMode::SecondaryIp)
        }
        Some("elastic-ip-on-secondary") => {
            no_route_table(r);
            if let Some(p) = &b.private_ip {
                r.at(
                    p.span(),
                    key("private_ip"),
                    "is only for mode = \"elastic-ip\": in this mode the Elastic IP goes to the virtual address itself".into(),
                );
            }
            allocation_id(r).map(|allocation_id| AwsMode::ElasticIpOnSecondary { allocation_id })
        }
        Some("route-table") => {
            only_for(r, ("allocation_id", &b.allocation_id), "elastic-ip");
            only_for(r, ("private_ip", &b.private_ip), "elastic-ip");
            aws_id(r, t, i, ("route_table_id", &b.route_table_id), "rtb-", true)
                .map(|route_table_id| AwsMode::RouteTable { route_table_id })
        }
        Some(other) => {
            r.at(
                b.mode.as_ref().map_or(t.span(), Spanned::span),
                key("mode"),
                format!("{other:?}: one of \"elastic-ip\", \"secondary-ip\", \"elastic-ip-on-secondary\", \"route-table\""),
            );
            None
        }
    };
    let network_interface_id = aws_id(
        r,
        t,
        i,
        ("network_interface_id", &b.network_interface_id),
        "eni-",
        false,
    );
    let private_ip = b.private_ip.as_ref().and_then(|p| {
        p.get_ref().parse::<Ipv4Addr>().map_or_else(
            |_| {
                r.at(
                    p.span(),
                    key("private_ip"),
                    format!("{:?} is not an IPv4 address (the ENI's private address the Elastic IP goes to)", p.get_ref()),
                );
                None
            },
            Some,
        )
    });
    let region_name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    };
    let region = text_where(
        r,
        &b.region,
        key("region"),
        region_name,
        "is not a region name: write e.g. \"eu-west-1\"",
    );
    let url = |s: &str| s.starts_with("http://") || s.starts_with("https://");
    let endpoint = text_where(
        r,
        &b.endpoint,
        key("endpoint"),
        url,
        "is not a URL: write e.g. \"https://ec2.eu-west-1.amazonaws.com\"",
    );
    if around.virtual_addresses.iter().any(|(a, _)| a.is_ipv6()) {
        r.at(
            around.virtual_addresses_span.clone(),
            format!("instance[{i}].virtual_addresses"),
            "the AWS backend moves IPv4 addresses only: use kind = \"netlink\" for IPv6".into(),
        );
    }
    let one_eip = match mode {
        Some(AwsMode::ElasticIp { .. }) => Some("elastic-ip"),
        Some(AwsMode::ElasticIpOnSecondary { .. }) => Some("elastic-ip-on-secondary"),
        _ => None,
    };
    if let Some(name) = one_eip
        && around.virtual_addresses.len() > 1
    {
        r.at(
            around.virtual_addresses_span.clone(),
            format!("instance[{i}].virtual_addresses"),
            format!(
                "{} addresses, but mode = \"{name}\" moves one Elastic IP: list only its address (one instance per Elastic IP)",
                around.virtual_addresses.len()
            ),
        );
    }
    if one_eip == Some("elastic-ip-on-secondary")
        && let Some((a, _)) = around
            .virtual_addresses
            .iter()
            .find(|(a, _)| matches!(a, IpAddr::V4(v4) if !vpc_private(*v4)))
    {
        r.warn(
            around.virtual_addresses_span.clone(),
            format!("instance[{i}].virtual_addresses"),
            format!("{a} is not a private address: in mode = \"elastic-ip-on-secondary\" the virtual address is the secondary private address the Elastic IP goes to (in the subnet), not the Elastic IP itself"),
        );
    }
    if !around.unicast {
        r.warn(
            t.span(),
            key("kind"),
            "a VPC does not carry multicast: set unicast_peers (and unicast_source), or the peers never hear each other".into(),
        );
    }
    if r.errors.len() != before {
        return None;
    }
    Some(AwsBackend {
        mode: mode?,
        network_interface_id,
        private_ip,
        region,
        endpoint,
    })
}

/// Whether `a` is in a range a VPC usually numbers its subnets from: RFC 1918, or the shared
/// 100.64.0.0/10 of secondary CIDR blocks.
fn vpc_private(a: Ipv4Addr) -> bool {
    let [first, second, ..] = a.octets();
    a.is_private() || (first == 100 && second & 0xc0 == 64)
}

/// An AWS id such as `eipalloc-...`: present when `required`, and with its prefix.
fn aws_id(
    r: &mut Report<'_>,
    t: &Spanned<VipBackendToml>,
    i: usize,
    (k, v): Field<'_>,
    prefix: &str,
    required: bool,
) -> Option<String> {
    let key = format!("instance[{i}].vip_backend.{k}");
    match v {
        None => {
            if required {
                r.at(t.span(), key, format!("missing: {k} = \"{prefix}...\""));
            }
            None
        }
        Some(v) if v.get_ref().len() > prefix.len() && v.get_ref().starts_with(prefix) => {
            Some(v.get_ref().clone())
        }
        Some(v) => {
            r.at(
                v.span(),
                key,
                format!(
                    "{:?} is not an id of that kind: it starts with \"{prefix}\"",
                    v.get_ref()
                ),
            );
            None
        }
    }
}

fn exec(r: &mut Report<'_>, t: &Spanned<VipBackendToml>, i: usize) -> Option<ExecBackend> {
    let b = t.get_ref();
    let key = |k: &str| format!("instance[{i}].vip_backend.{k}");
    let command = |r: &mut Report<'_>, (k, v): Field<'_>| match v {
        Some(v) if !v.get_ref().trim().is_empty() => Some(v.get_ref().clone()),
        Some(v) => {
            r.at(v.span(), key(k), "is empty: give a command line".into());
            None
        }
        None => {
            r.at(
                t.span(),
                key(k),
                format!("missing: {k} = \"/etc/ha/vip.sh {k}\" (run with ADDRESS/PREFIX INTERFACE appended)"),
            );
            None
        }
    };
    let add = command(r, ("add", &b.add));
    let remove = command(r, ("remove", &b.remove));
    let timeout = match &b.timeout {
        None => Some(DEFAULT_TIMEOUT),
        Some(v) => match duration::parse(v.get_ref()) {
            Ok(d) if d > Duration::ZERO => Some(d),
            Ok(_) => {
                r.at(
                    v.span(),
                    key("timeout"),
                    "is zero: give the scripts some time, e.g. \"10s\"".into(),
                );
                None
            }
            Err(e) => {
                r.at(v.span(), key("timeout"), e);
                None
            }
        },
    };
    Some(ExecBackend {
        add: add?,
        remove: remove?,
        timeout: timeout?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{assert_ends, assert_mentions};
    use crate::vrrpd::config::{Config, parse};

    fn instance(backend: &str, extra: &str) -> String {
        format!(
            "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_addresses = [\"10.0.1.50/32\"]\nunicast_peers = [\"10.0.1.12\"]\n{extra}vip_backend = {backend}\n"
        )
    }

    fn ok(text: &str) -> Config {
        parse("vrrpd.toml", text).unwrap_or_else(|e| panic!("{e:#?}"))
    }

    fn warnings(text: &str) -> Vec<String> {
        ok(text).warnings.iter().map(ToString::to_string).collect()
    }

    fn errors(text: &str) -> Vec<String> {
        crate::diagnostics::refused(parse, "vrrpd.toml", text)
    }

    #[test]
    fn the_design_elastic_ip_line_works_and_every_aws_key_is_read() {
        let c = ok(&instance(
            r#"{ kind = "aws", mode = "elastic-ip", allocation_id = "eipalloc-0123456789abcdef0" }"#,
            "",
        ));
        assert_eq!(
            c.instances[0].vip_backend,
            VipBackend::Aws(AwsBackend {
                mode: AwsMode::ElasticIp {
                    allocation_id: "eipalloc-0123456789abcdef0".into()
                },
                network_interface_id: None,
                private_ip: None,
                region: None,
                endpoint: None,
            })
        );
        assert!(!c.instances[0].vip_backend.announces());
        let c = ok(&instance(
            r#"{ kind = "aws", mode = "elastic-ip", allocation_id = "eipalloc-1", network_interface_id = "eni-2", private_ip = "10.0.1.11", region = "eu-west-1", endpoint = "http://127.0.0.1:5000" }"#,
            "",
        ));
        let VipBackend::Aws(a) = &c.instances[0].vip_backend else {
            panic!("aws");
        };
        assert_eq!(a.network_interface_id.as_deref(), Some("eni-2"));
        assert_eq!(a.private_ip, Some(Ipv4Addr::new(10, 0, 1, 11)));
        assert_eq!(a.region.as_deref(), Some("eu-west-1"));
        assert_eq!(a.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        let c = ok(&instance(
            r#"{ kind = "aws", mode = "route-table", route_table_id = "rtb-9" }"#,
            "",
        ));
        let VipBackend::Aws(a) = &c.instances[0].vip_backend else {
            panic!("aws");
        };
        assert_eq!(
            a.mode,
            AwsMode::RouteTable {
                route_table_id: "rtb-9".into()
            }
        );
        let c = ok(&instance(r#"{ kind = "aws", mode = "secondary-ip" }"#, ""));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn exec_reads_its_scripts_and_netlink_stays_the_default() {
        let c = ok(&instance(
            r#"{ kind = "exec", add = "/etc/ha/vip.sh add", remove = "/etc/ha/vip.sh del", timeout = "3s" }"#,
            "",
        ));
        assert_eq!(
            c.instances[0].vip_backend,
            VipBackend::Exec(ExecBackend {
                add: "/etc/ha/vip.sh add".into(),
                remove: "/etc/ha/vip.sh del".into(),
                timeout: Duration::from_secs(3),
            })
        );
        let c = ok(&instance(r#"{ kind = "netlink" }"#, ""));
        assert_eq!(c.instances[0].vip_backend, VipBackend::Netlink);
        assert!(c.instances[0].vip_backend.announces());
    }

    #[test]
    fn aws_mistakes_name_the_key_and_the_fix() {
        let e = errors(&instance(r#"{ kind = "aws" }"#, ""));
        assert_eq!(
            e,
            [
                "vrrpd.toml:7:15: instance[0].vip_backend.mode: missing: mode = \"elastic-ip\" (with allocation_id), \"secondary-ip\", \"elastic-ip-on-secondary\" (with allocation_id), or \"route-table\" (with route_table_id)"
            ]
        );
        let e = errors(&instance(
            r#"{ kind = "aws", mode = "elastic-ip", allocation_id = "eni-1", route_table_id = "rtb-1", add = "x" }"#,
            "",
        ));
        let want = [
            "instance[0].vip_backend.add: is only for kind = \"exec\", and this backend is kind = \"aws\"",
            "instance[0].vip_backend.route_table_id: is only for mode = \"route-table\"",
            "instance[0].vip_backend.allocation_id: \"eni-1\" is not an id of that kind: it starts with \"eipalloc-\"",
        ];
        for w in want {
            assert_ends(&e, w);
        }
        let e = errors(&instance(
            r#"{ kind = "aws", mode = "floating", region = "EU West", endpoint = "ec2.local" }"#,
            "",
        ));
        assert_mentions(&e, "mode: \"floating\": one of");
        assert_mentions(&e, "region: \"EU West\" is not a region name");
        assert_mentions(&e, "endpoint: \"ec2.local\" is not a URL");
        let e = errors(&instance(r#"{ kind = "aws", mode = "route-table" }"#, ""));
        assert!(
            e[0].ends_with("route_table_id: missing: route_table_id = \"rtb-...\""),
            "{e:#?}"
        );
    }

    #[test]
    fn aws_suits_the_instance_ipv4_one_elastic_ip_unicast() {
        let two = instance(
            r#"{ kind = "aws", mode = "elastic-ip", allocation_id = "eipalloc-1" }"#,
            "",
        )
        .replace("[\"10.0.1.50/32\"]", "[\"10.0.1.50/32\", \"10.0.1.51/32\"]");
        let e = errors(&two);
        assert!(
            e[0].contains(
                "virtual_addresses: 2 addresses, but mode = \"elastic-ip\" moves one Elastic IP"
            ),
            "{e:#?}"
        );
        let v6 = instance(r#"{ kind = "aws", mode = "secondary-ip" }"#, "")
            .replace("10.0.1.50/32", "fd00::50/128")
            .replace(
                "unicast_peers = [\"10.0.1.12\"]",
                "unicast_peers = [\"fd00::12\"]",
            );
        let e = errors(&v6);
        assert!(
            e[0].contains("the AWS backend moves IPv4 addresses only"),
            "{e:#?}"
        );
        let multicast = instance(
            r#"{ kind = "aws", mode = "secondary-ip" }"#,
            "garp = { repeat = 1 }\n",
        )
        .replace("unicast_peers = [\"10.0.1.12\"]\n", "");
        let w = warnings(&multicast);
        assert_eq!(w.len(), 2, "{w:#?}");
        assert_mentions(&w, "garp: ignored: only kind = \"netlink\" announces");
        assert_mentions(&w, "a VPC does not carry multicast: set unicast_peers");
    }

    #[test]
    fn elastic_ip_on_secondary_reads_its_keys_and_names_its_mistakes() {
        let c = ok(&instance(
            r#"{ kind = "aws", mode = "elastic-ip-on-secondary", allocation_id = "eipalloc-1", network_interface_id = "eni-2", region = "eu-west-1" }"#,
            "",
        ));
        let VipBackend::Aws(a) = &c.instances[0].vip_backend else {
            panic!("aws");
        };
        assert_eq!(
            a.mode,
            AwsMode::ElasticIpOnSecondary {
                allocation_id: "eipalloc-1".into()
            }
        );
        assert_eq!(a.network_interface_id.as_deref(), Some("eni-2"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(!c.instances[0].vip_backend.announces());

        let e = errors(&instance(
            r#"{ kind = "aws", mode = "elastic-ip-on-secondary" }"#,
            "",
        ));
        assert_eq!(
            e,
            [
                "vrrpd.toml:7:15: instance[0].vip_backend.allocation_id: missing: allocation_id = \"eipalloc-...\""
            ]
        );
        let e = errors(&instance(
            r#"{ kind = "aws", mode = "elastic-ip-on-secondary", allocation_id = "eipalloc-1", private_ip = "10.0.1.11", route_table_id = "rtb-1" }"#,
            "",
        ));
        assert_eq!(
            e,
            [
                "vrrpd.toml:7:138: instance[0].vip_backend.route_table_id: is only for mode = \"route-table\"",
                "vrrpd.toml:7:108: instance[0].vip_backend.private_ip: is only for mode = \"elastic-ip\": in this mode the Elastic IP goes to the virtual address itself",
            ]
        );
        let two = instance(
            r#"{ kind = "aws", mode = "elastic-ip-on-secondary", allocation_id = "eipalloc-1" }"#,
            "",
        )
        .replace("[\"10.0.1.50/32\"]", "[\"10.0.1.50/32\", \"10.0.1.51/32\"]");
        assert_eq!(
            errors(&two),
            [
                "vrrpd.toml:5:21: instance[0].virtual_addresses: 2 addresses, but mode = \"elastic-ip-on-secondary\" moves one Elastic IP: list only its address (one instance per Elastic IP)"
            ]
        );
        // The Elastic IP's public address written as the virtual address: a warning, since a
        // VPC may number a subnet from a public range.
        let public = instance(
            r#"{ kind = "aws", mode = "elastic-ip-on-secondary", allocation_id = "eipalloc-1" }"#,
            "",
        )
        .replace("10.0.1.50/32", "203.0.113.10/32");
        let w = warnings(&public);
        assert_eq!(
            w,
            [
                "vrrpd.toml:5:21: instance[0].virtual_addresses: 203.0.113.10 is not a private address: in mode = \"elastic-ip-on-secondary\" the virtual address is the secondary private address the Elastic IP goes to (in the subnet), not the Elastic IP itself"
            ]
        );
        let shared = public.replace("203.0.113.10/32", "100.64.1.50/32");
        assert!(ok(&shared).warnings.is_empty());
        let e = errors(&instance(r#"{ kind = "aws", mode = "elastic-ip-on-secondary", allocation_id = "eipalloc-1" }"#, "").replace("10.0.1.50/32", "fd00::50/128").replace("unicast_peers = [\"10.0.1.12\"]", "unicast_peers = [\"fd00::12\"]"));
        assert_mentions(&e, "the AWS backend moves IPv4 addresses only");
    }

    #[test]
    fn exec_and_netlink_mistakes() {
        let e = errors(&instance(
            r#"{ kind = "exec", add = " ", timeout = "0s" }"#,
            "",
        ));
        assert_ends(&e, "vip_backend.add: is empty: give a command line");
        assert_mentions(
            &e,
            "vip_backend.remove: missing: remove = \"/etc/ha/vip.sh remove\"",
        );
        assert_mentions(&e, "vip_backend.timeout: is zero");
        let e = errors(&instance(
            r#"{ kind = "netlink", allocation_id = "eipalloc-1" }"#,
            "",
        ));
        assert!(
            e[0].ends_with(
                "allocation_id: is only for kind = \"aws\", and this backend is kind = \"netlink\""
            ),
            "{e:#?}"
        );
        let e = errors(&instance(r#"{ kind = "gcp" }"#, ""));
        assert!(
            e[0].ends_with("vip_backend.kind: \"gcp\": one of \"netlink\", \"aws\", \"exec\""),
            "{e:#?}"
        );
        let e = errors(&instance(
            r#"{ kind = "aws", mode = "elastic-ip", allocation_id = "eipalloc-1", instance_id = "i-1" }"#,
            "",
        ));
        assert!(e[0].contains("unknown field `instance_id`"), "{e:#?}");
    }
}
