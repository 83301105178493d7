use serde_json::json;
use ttyward_serial::{FlowControl, Parity};

use super::*;

fn paths(err: &ConfigError) -> Vec<&str> {
    err.errors.iter().map(|e| e.path.as_str()).collect()
}

#[test]
fn fills_nport_defaults() {
    let c = Config::from_toml(
        r#"
        [[ports]]
        device = "sim:echo"
        mode = { type = "tcp-server" }
        "#,
    )
    .expect("valid");
    let p = &c.ports[0];
    assert_eq!(p.number, 1);
    assert_eq!(p.serial.baud.get(), 115_200);
    assert_eq!(p.serial.flow, FlowControl::RtsCts);
    assert_eq!(p.packing, Packing::default());
    let OperationMode::TcpServer(m) = &p.mode else {
        panic!("not tcp-server: {:?}", p.mode)
    };
    assert_eq!(
        (
            m.local_port,
            m.max_connections,
            m.alive_check_min,
            m.inactivity_ms
        ),
        (4001, 1, 7, 0)
    );
    assert_eq!(m.bind, default_bind());
}

#[test]
fn reports_every_bad_field_with_its_path() {
    let err = Config::from_toml(
        r#"
        [[ports]]
        device = "sim:echo"
        serial = { baud = 10, parity = "purple" }
        packing = { length = 2000 }
        mode = { type = "tcp-server", max_connections = 0, colour = "red" }
        "#,
    )
    .expect_err("five problems");
    assert_eq!(
        paths(&err),
        [
            "ports[0].serial.baud",
            "ports[0].serial.parity",
            "ports[0].packing.length",
            "ports[0].mode.max_connections",
            "ports[0].mode.colour",
        ],
        "{err}"
    );
}

#[test]
fn missing_device_and_unknown_mode_are_named() {
    let err =
        Config::from_value(&json!({"ports": [{"mode": {"type": "modem"}}]})).expect_err("bad");
    assert_eq!(paths(&err), ["ports[0].device", "ports[0].mode.type"]);
}

#[test]
fn round_trips_through_the_document_form() {
    let c = Config::from_toml(
        r#"
        [[ports]]
        number = 3
        alias = "meter"
        device = "/dev/ttyUSB0"
        serial = { baud = 19200, parity = "even", data_bits = 7, stop_bits = 2, flow = "none" }
        packing = { delimiter1 = "0d", delimiter2 = 10, delimiter_process = "strip", force_transmit_ms = 50 }
        mode = { type = "tcp-client", destinations = [{ host = "10.0.0.5", port = 502, local_port = 5011 }], connect_on = "any-character", disconnect_on = "inactivity", inactivity_ms = 3000 }

        [[ports]]
        number = 4
        device = "sim:modbus"
        mode = { type = "udp", destinations = [{ begin = "127.0.0.1", end = "127.0.0.3", port = 5000 }] }

        [[ports]]
        number = 5
        device = "sim:console"
        mode = { type = "rfc2217", bind = ["127.0.0.1", "::1"] }
        "#,
    )
    .expect("valid");
    assert_eq!(c.ports[0].serial.parity, Parity::Even);
    assert_eq!(c.ports[0].packing.delimiter1, Some(0x0d));
    let again = Config::from_value(&c.to_value()).expect("own output is valid");
    assert_eq!(again, c);
}

#[test]
fn rejects_duplicate_numbers_and_port_clashes() {
    let err = Config::from_value(&json!({"ports": [
        {"number": 1, "device": "sim:echo", "mode": {"type": "tcp-server", "local_port": 5000}},
        {"number": 1, "device": "sim:echo", "mode": {"type": "rfc2217", "local_port": 5000}},
    ]}))
    .expect_err("clash");
    assert_eq!(paths(&err), ["ports[1].number", "ports[1].mode.local_port"]);
}

#[test]
fn ipv4_and_ipv6_wildcards_do_not_clash() {
    let c = Config::from_value(&json!({"ports": [
        {"number": 1, "device": "sim:echo", "mode": {"type": "tcp-server", "local_port": 5000, "bind": ["0.0.0.0"]}},
        {"number": 2, "device": "sim:echo", "mode": {"type": "tcp-server", "local_port": 5000, "bind": ["::1"]}},
    ]}));
    assert!(c.is_ok(), "{c:?}");
}

#[test]
fn refuses_connection_control_pairs_the_nport_does_not_have() {
    let err = Config::from_value(&json!({"ports": [{"device": "sim:echo", "mode": {
        "type": "tcp-client", "destinations": [{"host": "h", "port": 1}],
        "connect_on": "startup", "disconnect_on": "dsr-off"}}]}))
    .expect_err("bad pair");
    assert_eq!(paths(&err), ["ports[0].mode.disconnect_on"]);
}

#[test]
fn limits_udp_ranges_to_64_addresses() {
    let err = Config::from_value(&json!({"ports": [{"device": "sim:echo", "mode": {
        "type": "udp", "destinations": [{"begin": "10.0.0.1", "end": "10.0.1.1", "port": 9}]}}]}))
    .expect_err("too long");
    assert_eq!(paths(&err), ["ports[0].mode.destinations[0].end"]);
    let r = UdpRange {
        begin: "10.0.0.254".parse().expect("address"),
        end: "10.0.1.1".parse().expect("address"),
        port: 9,
    };
    assert_eq!(r.addresses().len(), 4);
}

#[test]
fn delimiter2_needs_delimiter1() {
    let err = Config::from_value(
        &json!({"ports": [{"device": "sim:echo", "packing": {"delimiter2": "0a"}}]}),
    )
    .expect_err("bad");
    assert_eq!(paths(&err), ["ports[0].packing.delimiter2"]);
}

#[test]
fn real_com_fills_moxa_port_numbers() {
    let c = Config::from_toml(
        r#"
        [[ports]]
        number = 1
        device = "sim:echo"
        mode = { type = "real-com" }
        [[ports]]
        number = 17
        device = "sim:echo"
        mode = { type = "real-com" }
        [[ports]]
        number = 40
        device = "sim:echo"
        mode = { type = "real-com" }
        "#,
    )
    .expect("valid");
    let ports: Vec<(u16, u16)> = c
        .ports
        .iter()
        .map(|p| match &p.mode {
            OperationMode::RealCom(m) => (m.data_port, m.command_port),
            other => panic!("not real-com: {other:?}"),
        })
        .collect();
    // Spec realcom-protocol.md §2.2: 950/966 + N for ports 1-16, 982/998
    // from port 17; beyond 32 ttyward's own 2000/3000 + N.
    assert_eq!(ports, [(950, 966), (982, 998), (2040, 3040)]);
    let OperationMode::RealCom(m) = &c.ports[0].mode else {
        unreachable!()
    };
    assert_eq!(m.max_connections, 1);
    assert!(!m.allow_driver_control);
    assert_eq!(m.connection_down_dtr, LineOnDown::AlwaysHigh);
    assert_eq!(m.alive, Default::default());
}

#[test]
fn real_com_reports_bad_fields_and_port_clashes() {
    let err = Config::from_toml(
        r#"
        [[ports]]
        number = 1
        device = "sim:echo"
        mode = { type = "real-com", data_port = 5000, command_port = 5000, connection_down_rts = "sideways", allow_driver_control = "yes" }
        [[ports]]
        number = 2
        device = "sim:echo"
        mode = { type = "tcp-server", local_port = 4002, command_port = 5000 }
        "#,
    )
    .expect_err("four problems");
    assert_eq!(
        paths(&err),
        [
            "ports[0].mode.allow_driver_control",
            "ports[0].mode.connection_down_rts",
            "ports[0].mode.command_port",
            "ports[1].mode.command_port",
        ],
        "{err}"
    );
}

#[test]
fn real_com_round_trips_through_the_document() {
    let c = Config::from_toml(
        r#"
        [[ports]]
        number = 3
        device = "sim:echo"
        mode = { type = "real-com", bind = ["127.0.0.1"], data_port = 0, command_port = 0, max_connections = 2, allow_driver_control = true, connection_down_dtr = "goes-low" }
        [[ports]]
        number = 4
        device = "sim:echo"
        mode = { type = "tcp-server", command_port = 0 }
        "#,
    )
    .expect("valid");
    let back = Config::from_value(&c.to_value()).expect("round trip");
    assert_eq!(back, c);
}

#[test]
fn pair_modes_fill_nport_defaults() {
    let c = Config::from_toml(
        r#"
        [[ports]]
        number = 2
        device = "sim:echo"
        mode = { type = "pair-master", host = "10.0.0.9" }
        [[ports]]
        number = 3
        device = "sim:echo"
        mode = { type = "pair-slave" }
        "#,
    )
    .expect("valid");
    let OperationMode::PairMaster(m) = &c.ports[0].mode else {
        panic!("not pair-master: {:?}", c.ports[0].mode)
    };
    assert_eq!(
        *m,
        PairMasterMode {
            host: "10.0.0.9".into(),
            port: 4002,
            alive_check_min: 7,
            reconnect_min_ms: 1_000,
            reconnect_max_ms: 30_000,
        }
    );
    let OperationMode::PairSlave(s) = &c.ports[1].mode else {
        panic!("not pair-slave: {:?}", c.ports[1].mode)
    };
    assert_eq!(
        *s,
        PairSlaveMode {
            bind: default_bind(),
            local_port: 4003,
            alive_check_min: 7,
        }
    );
    // The master listens on nothing, the slave on its local port.
    assert!(c.ports[0].mode.listens().is_empty());
    assert_eq!(c.ports[1].mode.listen().map(|l| l.port), Some(4003));
    assert_eq!(
        (c.ports[0].mode.name(), c.ports[1].mode.name()),
        ("pair-master", "pair-slave")
    );
    let back = Config::from_value(&c.to_value()).expect("round trip");
    assert_eq!(back, c);
}

#[test]
fn pair_modes_report_bad_fields_and_port_clashes() {
    let err = Config::from_toml(
        r#"
        [[ports]]
        number = 1
        device = "sim:echo"
        mode = { type = "pair-master", port = 0, reconnect_min_ms = 5000, reconnect_max_ms = 100, alive_check_min = 100, local_port = 4 }
        [[ports]]
        number = 2
        device = "sim:echo"
        mode = { type = "pair-master", host = "" }
        secure = "encrypted"            # pair connection can use TLS
        [[ports]]
        number = 3
        device = "sim:echo"
        mode = { type = "pair-slave", local_port = 4004 }
        [[ports]]
        number = 4
        device = "sim:echo"
        mode = { type = "tcp-server" }
        [[ports]]
        number = 5
        device = "sim:echo"
        mode = { type = "pair-slave", host = 7, bind = ["not an address"] }
        "#,
    )
    .expect_err("bad pair fields");
    assert_eq!(
        paths(&err),
        [
            "ports[0].mode.host",
            "ports[0].mode.reconnect_max_ms",
            "ports[0].mode.port",
            "ports[0].mode.alive_check_min",
            "ports[0].mode.local_port",
            "ports[1].mode.host",
            "ports[4].mode.bind[0]",
            "ports[4].mode.host",
            "ports[3].mode.local_port",
        ],
        "{err}"
    );
    let host = &err.errors[0].message;
    assert!(host.contains("pair slave"), "{host}");
}

#[test]
fn reverse_terminal_modes_take_nport_defaults_and_round_trip() {
    let c = Config::from_toml(
        r#"
        [[ports]]
        number = 1
        device = "sim:console"
        mode = { type = "reverse-ssh" }
        [[ports]]
        number = 2
        device = "sim:console"
        mode = { type = "reverse-telnet", local_port = 0, max_connections = 2, inactivity_min = 99, map_crlf = "lf", groups = ["Operator", "consoles"] }
        "#,
    )
    .expect("valid");
    let OperationMode::ReverseSsh(ssh) = &c.ports[0].mode else {
        panic!("not reverse-ssh: {:?}", c.ports[0].mode)
    };
    assert_eq!(
        *ssh,
        ReverseTerminalMode {
            bind: default_bind(),
            local_port: 4001,
            max_connections: 1,
            inactivity_min: 0,
            map_crlf: MapCrLf::CrLf,
            groups: vec!["Administrator".into()],
        }
    );
    let OperationMode::ReverseTelnet(telnet) = &c.ports[1].mode else {
        panic!("not reverse-telnet: {:?}", c.ports[1].mode)
    };
    assert_eq!(
        (
            telnet.local_port,
            telnet.max_connections,
            telnet.inactivity_min,
            telnet.map_crlf
        ),
        (0, 2, 99, MapCrLf::Lf)
    );
    assert_eq!(telnet.groups, ["Operator", "consoles"]);
    assert_eq!(
        (c.ports[0].mode.name(), c.ports[1].mode.name()),
        ("reverse-ssh", "reverse-telnet")
    );
    assert_eq!(c.ports[0].mode.listen().map(|l| l.port), Some(4001));
    let back = Config::from_value(&c.to_value()).expect("round trip");
    assert_eq!(back, c);
    assert_eq!(c.to_value()["ports"][1]["mode"]["map_crlf"], json!("lf"));
}

#[test]
fn reverse_terminal_modes_report_bad_fields() {
    let err = Config::from_toml(
        r#"
        [[ports]]
        number = 1
        device = "sim:console"
        secure = "encrypted"
        mode = { type = "reverse-ssh", inactivity_min = 100, map_crlf = "crlf", max_connections = 0 }
        [[ports]]
        number = 2
        device = "sim:console"
        mode = { type = "reverse-telnet", groups = [] }
        [[ports]]
        number = 3
        device = "sim:console"
        mode = { type = "reverse-telnet", groups = ["Operator", "bad name", 7, "operator"], inactivity_ms = 5 }
        [[ports]]
        number = 4
        device = "sim:console"
        mode = { type = "reverse-ssh", local_port = 4001 }
        "#,
    )
    .expect_err("bad reverse terminal fields");
    assert_eq!(
        paths(&err),
        [
            "ports[0].mode.max_connections",
            "ports[0].mode.inactivity_min",
            "ports[0].mode.map_crlf",
            "ports[0].secure",
            "ports[1].mode.groups",
            "ports[2].mode.groups[1]",
            "ports[2].mode.groups[2]",
            "ports[2].mode.groups[3]",
            "ports[2].mode.inactivity_ms",
            "ports[3].mode.local_port",
        ],
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("listed twice"), "{text}");
    assert!(text.contains("cr-lf"), "{text}");
    assert!(
        text.contains("reverse-ssh is encrypted by SSH itself"),
        "{text}"
    );
}
