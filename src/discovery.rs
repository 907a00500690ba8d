//! Home Assistant MQTT discovery for the garden sensor: the retained config message of each
//! entity, and the state message of a reading (GARDEN.md: integrations/mqtt, sensor.mqtt).
//!
//! Topics: config `homeassistant/sensor/<node>/<object>/config` (the node-id level, so a broker
//! ACL can confine a device to its own node with `%u`), state `ramkey/<node>/state`, one JSON
//! object with a key per measured value: a missing sensor's key is left out, never filled in.
//! The node id is `ramkey_` and the last three bytes of the MAC in hex, only `[a-z0-9_]`.
//! Every entity has `expire_after` three report periods, so a sensor that stops reporting
//! turns `unavailable` rather than showing an old value as current.
//!
//! Sans-IO and allocation-free: payloads are written into `heapless::String`s.

#![forbid(unsafe_code)]

use crate::readings::Reading;

/// Longest topic written.
pub const TOPIC_MAX: usize = 64;
/// Longest payload written.
pub const PAYLOAD_MAX: usize = 512;

/// A device's names: its node id and display name from the MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// `ramkey_a1b2c3`.
    pub node: heapless::String<16>,
    /// `ramkey-A1B2C3`, as the setup AP is called.
    pub name: heapless::String<16>,
}

impl Device {
    /// The names for a station MAC.
    pub fn from_mac(mac: [u8; 6]) -> Device {
        let mut node = Text::<16>::new();
        let mut name = Text::<16>::new();
        node.s("ramkey_");
        name.s("ramkey-");
        for byte in &mac[3..] {
            node.hex(*byte, b"0123456789abcdef");
            name.hex(*byte, b"0123456789ABCDEF");
        }
        Device {
            node: node.0,
            name: name.0,
        }
    }
}

/// A `heapless::String` written piece by piece: no `core::fmt`, which the production image
/// otherwise leaves out (it has no log lines), and which would cost it about 10 KB of flash.
/// What does not fit is cut off; every caller's buffer is sized for its longest output.
struct Text<const N: usize>(heapless::String<N>);

impl<const N: usize> Text<N> {
    fn new() -> Self {
        Text(heapless::String::new())
    }

    fn s(&mut self, text: &str) {
        let _ = self.0.push_str(text);
    }

    fn hex(&mut self, byte: u8, digits: &[u8; 16]) {
        for nibble in [byte >> 4, byte & 15] {
            let _ = self.0.push(char::from(digits[usize::from(nibble)]));
        }
    }

    /// `value` in decimal.
    fn u(&mut self, value: u32) {
        let mut digits = [0u8; 10];
        let mut n = value;
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in &digits[at..] {
            let _ = self.0.push(char::from(d));
        }
    }

    /// `value / 10^places` with exactly `places` decimals (`-1.05`).
    fn fixed(&mut self, value: i32, places: u32) {
        if value < 0 {
            self.s("-");
        }
        let a = value.unsigned_abs();
        let scale = 10u32.pow(places);
        self.u(a / scale);
        self.s(".");
        let mut rest = a % scale;
        let mut scale = scale / 10;
        while scale > 0 {
            let _ = self.0.push(char::from(b'0' + (rest / scale) as u8));
            rest %= scale;
            scale /= 10;
        }
    }
}

/// One entity of the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entity {
    /// The object id and the key in the state JSON.
    pub key: &'static str,
    /// Its display name.
    pub name: &'static str,
    /// Home Assistant's device class.
    pub device_class: &'static str,
    /// Its unit.
    pub unit: &'static str,
}

/// The sensor entities, in state-key order.
pub const ENTITIES: [Entity; 5] = [
    Entity {
        key: "temperature",
        name: "Temperature",
        device_class: "temperature",
        unit: "°C",
    },
    Entity {
        key: "humidity",
        name: "Humidity",
        device_class: "humidity",
        unit: "%",
    },
    Entity {
        key: "pressure",
        name: "Pressure",
        device_class: "pressure",
        unit: "hPa",
    },
    Entity {
        key: "soil",
        name: "Soil moisture",
        device_class: "moisture",
        unit: "%",
    },
    Entity {
        key: "battery",
        name: "Battery",
        device_class: "voltage",
        unit: "V",
    },
];

/// The entities a board has, as bits in [`ENTITIES`] order: the BME280's three, the soil
/// probe, the battery divider.
pub fn entity_mask(bme280: bool, soil: bool, battery: bool) -> u8 {
    (if bme280 { 0b111 } else { 0 }) | u8::from(soil) << 3 | u8::from(battery) << 4
}

/// The state topic.
pub fn state_topic(device: &Device) -> heapless::String<TOPIC_MAX> {
    let mut topic = Text::new();
    topic.s("ramkey/");
    topic.s(&device.node);
    topic.s("/state");
    topic.0
}

/// The config topic of `entity`.
pub fn config_topic(device: &Device, entity: &Entity) -> heapless::String<TOPIC_MAX> {
    let mut topic = Text::new();
    topic.s("homeassistant/sensor/");
    topic.s(&device.node);
    topic.s("/");
    topic.s(entity.key);
    topic.s("/config");
    topic.0
}

/// The retained config payload of `entity`; `period_s` is the report period.
pub fn config_payload(
    device: &Device,
    entity: &Entity,
    period_s: u32,
    firmware: &str,
) -> heapless::String<PAYLOAD_MAX> {
    let mut p = Text::new();
    let node = device.node.as_str();
    for piece in [
        "{\"name\":\"",
        entity.name,
        "\",\"uniq_id\":\"",
        node,
        "_",
        entity.key,
        "\",\"obj_id\":\"",
        node,
        "_",
        entity.key,
        "\",\"dev_cla\":\"",
        entity.device_class,
        "\",\"stat_cla\":\"measurement\",\"unit_of_meas\":\"",
        entity.unit,
        "\",\"stat_t\":\"",
        state_topic(device).as_str(),
        "\",\"val_tpl\":\"{{ value_json.",
        entity.key,
        " }}\",\"exp_aft\":",
    ] {
        p.s(piece);
    }
    p.u(period_s.saturating_mul(3));
    for piece in [
        ",\"dev\":{\"ids\":[\"",
        node,
        "\"],\"name\":\"",
        device.name.as_str(),
        "\",\"mf\":\"ramkey\",\"mdl\":\"ESP8266 garden sensor\",\"sw\":\"",
        firmware,
        "\"}}",
    ] {
        p.s(piece);
    }
    p.0
}

/// The state payload of `reading`: a key per value present, in the entity units.
pub fn state_payload(reading: &Reading) -> heapless::String<PAYLOAD_MAX> {
    let mut p = Text::new();
    p.s("{");
    let key = |p: &mut Text<PAYLOAD_MAX>, name: &str| {
        if p.0.len() > 1 {
            p.s(",");
        }
        p.s("\"");
        p.s(name);
        p.s("\":");
    };
    if let Some(t) = reading.temperature_centi_c {
        key(&mut p, "temperature");
        p.fixed(i32::from(t), 2);
    }
    if let Some(h) = reading.humidity_half_pct {
        key(&mut p, "humidity");
        p.fixed(i32::from(h) * 5, 1);
    }
    if let Some(d) = reading.pressure_deci_hpa {
        key(&mut p, "pressure");
        p.fixed(i32::from(d), 1);
    }
    if let Some(s) = reading.soil_pct {
        key(&mut p, "soil");
        p.u(u32::from(s));
    }
    if let Some(b) = reading.battery_20mv {
        key(&mut p, "battery");
        p.fixed(i32::from(b) * 2, 2);
    }
    p.s("}");
    p.0
}

/// The history topic: readings that waited in the queue, not retained.
pub fn history_topic(device: &Device) -> heapless::String<TOPIC_MAX> {
    let mut topic = Text::new();
    topic.s("ramkey/");
    topic.s(&device.node);
    topic.s("/history");
    topic.0
}

/// A queued reading for the history topic: the state's keys and `age_s`, how many seconds
/// before this report it was taken by the device clock (Home Assistant cannot backdate a
/// state, so older readings go here rather than to the state topic).
pub fn history_payload(reading: &Reading, age_s: u32) -> heapless::String<PAYLOAD_MAX> {
    let mut p = Text(state_payload(reading));
    let _ = p.0.pop();
    if p.0.len() > 1 {
        p.s(",");
    }
    p.s("\"age_s\":");
    p.u(age_s);
    p.s("}");
    p.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x5C, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3];

    #[test]
    fn names_from_the_mac() {
        let d = Device::from_mac(MAC);
        assert_eq!(d.node.as_str(), "ramkey_a1b2c3");
        assert_eq!(d.name.as_str(), "ramkey-A1B2C3");
        assert_eq!(
            config_topic(&d, &ENTITIES[0]).as_str(),
            "homeassistant/sensor/ramkey_a1b2c3/temperature/config"
        );
        assert_eq!(state_topic(&d).as_str(), "ramkey/ramkey_a1b2c3/state");
    }

    #[test]
    fn every_config_fits_and_names_its_state_key() {
        let d = Device::from_mac(MAC);
        for e in &ENTITIES {
            let p = config_payload(&d, e, 600, "0.1.0 development");
            assert!(p.ends_with("}}"), "cut short: {p}");
            assert!(p.contains(&std::format!("value_json.{} }}", e.key)));
            assert!(p.contains("\"exp_aft\":1800"));
        }
    }

    proptest::proptest! {
        #[test]
        fn numbers_read_back_as_what_was_measured(
            t in proptest::prelude::any::<i16>(),
            h in 0u8..=200,
            d in proptest::prelude::any::<u16>(),
            b in proptest::prelude::any::<u8>(),
            age in proptest::prelude::any::<u32>(),
        ) {
            let r = Reading {
                temperature_centi_c: Some(t),
                humidity_half_pct: Some(h),
                pressure_deci_hpa: Some(d),
                soil_pct: Some(h / 2),
                battery_20mv: Some(b),
            };
            let json: serde_json::Value =
                serde_json::from_str(&history_payload(&r, age)).expect("JSON");
            let near = |k: &str, want: f64| (json[k].as_f64().unwrap_or(f64::NAN) - want).abs() < 1e-6;
            proptest::prop_assert!(near("temperature", f64::from(t) / 100.0), "{}", json);
            proptest::prop_assert!(near("humidity", f64::from(h) / 2.0), "{}", json);
            proptest::prop_assert!(near("pressure", f64::from(d) / 10.0), "{}", json);
            proptest::prop_assert!(near("battery", f64::from(b) * 0.02), "{}", json);
            proptest::prop_assert_eq!(json["soil"].as_u64(), Some(u64::from(h / 2)));
            proptest::prop_assert_eq!(json["age_s"].as_u64(), Some(u64::from(age)));
        }
    }

    #[test]
    fn state_has_only_what_was_measured() {
        let full = Reading {
            temperature_centi_c: Some(-105),
            humidity_half_pct: Some(103),
            pressure_deci_hpa: Some(10_065),
            soil_pct: Some(42),
            battery_20mv: Some(196),
        };
        assert_eq!(
            state_payload(&full).as_str(),
            "{\"temperature\":-1.05,\"humidity\":51.5,\"pressure\":1006.5,\"soil\":42,\"battery\":3.92}"
        );
        let soil_only = Reading {
            soil_pct: Some(7),
            ..Reading::default()
        };
        assert_eq!(state_payload(&soil_only).as_str(), "{\"soil\":7}");
        assert_eq!(state_payload(&Reading::default()).as_str(), "{}");
        assert_eq!(
            history_payload(&soil_only, 1200).as_str(),
            "{\"soil\":7,\"age_s\":1200}"
        );
        assert_eq!(
            history_payload(&Reading::default(), 5).as_str(),
            "{\"age_s\":5}"
        );
    }
}
