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

use core::fmt::Write;

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
        let mut node = heapless::String::new();
        let mut name = heapless::String::new();
        let _ = write!(node, "ramkey_{:02x}{:02x}{:02x}", mac[3], mac[4], mac[5]);
        let _ = write!(name, "ramkey-{:02X}{:02X}{:02X}", mac[3], mac[4], mac[5]);
        Device { node, name }
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

/// The state topic.
pub fn state_topic(device: &Device) -> heapless::String<TOPIC_MAX> {
    let mut topic = heapless::String::new();
    let _ = write!(topic, "ramkey/{}/state", device.node);
    topic
}

/// The config topic of `entity`.
pub fn config_topic(device: &Device, entity: &Entity) -> heapless::String<TOPIC_MAX> {
    let mut topic = heapless::String::new();
    let _ = write!(
        topic,
        "homeassistant/sensor/{}/{}/config",
        device.node, entity.key
    );
    topic
}

/// The retained config payload of `entity`; `period_s` is the report period.
pub fn config_payload(
    device: &Device,
    entity: &Entity,
    period_s: u32,
    firmware: &str,
) -> heapless::String<PAYLOAD_MAX> {
    let mut p = heapless::String::new();
    let _ = write!(
        p,
        "{{\"name\":\"{name}\",\"uniq_id\":\"{node}_{key}\",\"obj_id\":\"{node}_{key}\",\
\"dev_cla\":\"{class}\",\"stat_cla\":\"measurement\",\"unit_of_meas\":\"{unit}\",\
\"stat_t\":\"{state}\",\"val_tpl\":\"{{{{ value_json.{key} }}}}\",\"exp_aft\":{expire},\
\"dev\":{{\"ids\":[\"{node}\"],\"name\":\"{dev}\",\"mf\":\"ramkey\",\"mdl\":\"ESP8266 garden sensor\",\"sw\":\"{firmware}\"}}}}",
        name = entity.name,
        node = device.node,
        key = entity.key,
        class = entity.device_class,
        unit = entity.unit,
        state = state_topic(device),
        expire = period_s.saturating_mul(3),
        dev = device.name,
    );
    p
}

/// The state payload of `reading`: a key per value present, in the entity units.
pub fn state_payload(reading: &Reading) -> heapless::String<PAYLOAD_MAX> {
    let mut p = heapless::String::new();
    let _ = p.push('{');
    let mut first = true;
    let mut field =
        |p: &mut heapless::String<PAYLOAD_MAX>, key: &str, args: core::fmt::Arguments<'_>| {
            let _ = write!(p, "{}\"{key}\":{args}", if first { "" } else { "," });
            first = false;
        };
    if let Some(t) = reading.temperature_centi_c {
        let sign = if t < 0 { "-" } else { "" };
        let a = i32::from(t).unsigned_abs();
        field(
            &mut p,
            "temperature",
            format_args!("{sign}{}.{:02}", a / 100, a % 100),
        );
    }
    if let Some(h) = reading.humidity_half_pct {
        field(
            &mut p,
            "humidity",
            format_args!("{}.{}", h / 2, if h % 2 == 1 { 5 } else { 0 }),
        );
    }
    if let Some(d) = reading.pressure_deci_hpa {
        field(&mut p, "pressure", format_args!("{}.{}", d / 10, d % 10));
    }
    if let Some(s) = reading.soil_pct {
        field(&mut p, "soil", format_args!("{s}"));
    }
    if let Some(b) = reading.battery_20mv {
        let mv = u32::from(b) * 20;
        field(
            &mut p,
            "battery",
            format_args!("{}.{:02}", mv / 1000, mv % 1000 / 10),
        );
    }
    let _ = p.push('}');
    p
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
    }
}
