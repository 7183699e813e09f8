//! Readings over MQTT: with `--mqtt mqtt://host:port`, keten subscribes to
//! `keten/<tenant>/<device>/readings` (QoS 1) and ingests each message's payload — a SenML pack or
//! a JSON batch — exactly as `POST /v1/readings` does.
//!
//! - **At least once.** The session is persistent (clean session off, a fixed client id), and a
//!   message is acknowledged only after its readings are stored (durably committed), so a crash
//!   or a lost connection redelivers it; redelivered readings are dropped as duplicates.
//! - **The topic names the device.** A SenML pack without a base name gets the topic's device as
//!   its base name; every reading of a message must be of the topic's device (others are
//!   rejected and logged), and the device must be one the topic's tenant registered.
//! - **Absolute times only.** A SenML pack over MQTT must carry absolute times (`bt` + `t` at or
//!   after 2^28 s): a relative time would resolve when keten takes the message, not when it was
//!   sent, so a redelivery would store it again; such a pack is refused (logged). JSON batches
//!   always carry absolute times.
//! - **A database failure** is retried with backoff (0.5 s doubling to 30 s) on the same message
//!   until it is stored or keten stops, so acknowledgements stay in order and nothing is skipped.
//! - **Reconnects** with a backoff from 0.5 s doubling to 30 s (reset once a message is handled);
//!   subscriptions are renewed on each connection. Messages over 8 MiB are acknowledged and
//!   dropped (logged).
//! - A message that cannot be ingested at all (not JSON, an unknown tenant) is logged and
//!   acknowledged (redelivering it would not help); rejected records are logged with the count.
//! - **The broker authenticates.** Keten trusts the topic's tenant: the broker must let each
//!   tenant's devices publish only under their own prefix (Mosquitto: per-user accounts and an
//!   ACL `pattern write keten/%u/+/readings`). Each keten node subscribes with its own client id
//!   and takes every message (no shared subscription): run the subscriber on one node.

use std::time::Duration;

use network::TenantId;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use serde_json::Value;
use store::Store;

/// The subscription topic filter.
pub const TOPIC_FILTER: &str = "keten/+/+/readings";
/// The largest message accepted (as `POST /v1/readings`).
pub const MESSAGE_BYTES_MAX: usize = crate::readings::READINGS_BYTES_MAX;
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// The largest packet read from the broker (larger ones fail the connection).
const INCOMING_PACKET_BYTES_MAX: usize = 256 * 1024 * 1024;
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where the broker is: `mqtt://host:port` (port 1883 by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// The client id of the persistent session (default `keten`); one per keten node.
    pub client_id: String,
}

impl MqttConfig {
    pub fn parse(url: &str, client_id: &str) -> Result<MqttConfig, String> {
        let rest = url
            .strip_prefix("mqtt://")
            .ok_or_else(|| format!("{url:?} is not an mqtt:// URL (TLS is not supported)"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| format!("{port:?} is not a port"))?),
            None => (rest, 1883),
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!("{url:?} has no host"));
        }
        Ok(MqttConfig { host: host.to_owned(), port, client_id: client_id.to_owned() })
    }
}

/// The tenant and device a topic names, if it is `keten/<tenant>/<device>/readings`.
pub fn parse_topic(topic: &str) -> Option<(TenantId, String)> {
    let mut parts = topic.split('/');
    let (Some("keten"), Some(tenant), Some(device), Some("readings"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let tenant = TenantId::parse(tenant).ok()?;
    coldchain::reading::check_device_key(device).ok()?;
    Some((tenant, device.to_owned()))
}

/// The payload as a readings body of the topic's device: its media type and bytes. A SenML pack
/// that names no device (no `bn`, no `n` anywhere) gets the device as its base name; a JSON batch
/// (records with `device`) is kept. `Err` names why the message is refused: a SenML time that is
/// relative (see the module docs).
pub fn payload_body(payload: &[u8], device: &str) -> Result<(&'static str, Vec<u8>), String> {
    let Ok(Value::Array(mut records)) = serde_json::from_slice::<Value>(payload) else {
        return Ok(("application/json", payload.to_vec()));
    };
    let is_batch = records.iter().any(|record| record.get("device").is_some());
    if is_batch {
        return Ok(("application/json", payload.to_vec()));
    }
    let mut base_time = 0.0;
    for record in &records {
        if let Some(time) = record.get("bt").and_then(Value::as_f64) {
            base_time = time;
        }
        let time = base_time + record.get("t").and_then(Value::as_f64).unwrap_or(0.0);
        if time < coldchain::senml::RELATIVE_TIME_LIMIT_SECONDS {
            return Err("a SenML time over MQTT must be absolute (bt + t at or after 2^28 s)".to_owned());
        }
    }
    let names_device = records.iter().any(|record| record.get("bn").is_some() || record.get("n").is_some());
    if !names_device && let Some(Value::Object(first)) = records.first_mut() {
        first.insert("bn".to_owned(), Value::String(device.to_owned()));
    }
    Ok(("application/senml+json", serde_json::to_vec(&records).unwrap_or_else(|_| payload.to_vec())))
}

/// Ingests one message, retrying a database failure with backoff until it is stored; answers
/// false only when keten stops first (the message stays unacknowledged, for redelivery).
async fn handle(store: &Store, publish: &Publish, stopped: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    let Some((tenant, device)) = parse_topic(&publish.topic) else {
        tracing::warn!(topic = %publish.topic, "an MQTT message on a topic that names no tenant and device; dropped");
        return true;
    };
    if publish.payload.len() > MESSAGE_BYTES_MAX {
        tracing::warn!(topic = %publish.topic, bytes = publish.payload.len(), "an MQTT message over the size limit; dropped");
        return true;
    }
    let (media_type, body) = match payload_body(&publish.payload, &device) {
        Ok(body) => body,
        Err(reason) => {
            tracing::warn!(topic = %publish.topic, %reason, "an MQTT message refused; dropped");
            return true;
        }
    };
    let mut backoff = BACKOFF_FIRST;
    loop {
        // Readings of other devices than the topic's are not this message's to send.
        match crate::readings::ingest(store, &tenant, media_type, &body, jiff::Timestamp::now(), Some(&device)).await {
            Ok(ingested) => {
                if !ingested.rejected.is_empty() {
                    let first = ingested.rejected.first().map(|(index, reason)| format!("record {index}: {reason}"));
                    tracing::warn!(topic = %publish.topic, rejected = ingested.rejected.len(), first = ?first,
                        accepted = ingested.accepted, "MQTT readings rejected");
                }
                return true;
            }
            // The database is out of reach or overloaded: try the same message again.
            Err(problem) if problem.status >= 500 => {
                tracing::warn!(topic = %publish.topic, detail = %problem.detail, retry_in_ms = backoff.as_millis() as u64,
                    "MQTT readings not stored yet");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped.changed() => return false,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(problem) => {
                tracing::warn!(topic = %publish.topic, detail = %problem.detail, "an MQTT message is no readings batch; dropped");
                return true;
            }
        }
    }
}

/// Subscribes and ingests until `stopped` turns true.
pub async fn run(store: Store, config: MqttConfig, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut options = MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(false);
    options.set_manual_acks(true);
    // Accept larger packets than ingested, so an oversized message is dropped (and acknowledged)
    // here rather than failing the connection and coming back forever.
    options.set_max_packet_size(INCOMING_PACKET_BYTES_MAX, INCOMING_PACKET_BYTES_MAX);
    let (client, mut events) = AsyncClient::new(options, 64);
    let mut backoff = BACKOFF_FIRST;
    tracing::info!(host = %config.host, port = config.port, topic = TOPIC_FILTER, "subscribing to MQTT readings");
    loop {
        let event = tokio::select! {
            event = events.poll() => event,
            _ = stopped.changed() => break,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let Err(error) = client.subscribe(TOPIC_FILTER, QoS::AtLeastOnce).await {
                    tracing::warn!(%error, "MQTT subscribe failed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if !handle(&store, &publish, &mut stopped).await {
                    break;
                }
                backoff = BACKOFF_FIRST;
                if let Err(error) = client.ack(&publish).await {
                    tracing::warn!(%error, "MQTT acknowledgement failed");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "MQTT connection lost");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped.changed() => break,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    let _ = client.disconnect().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_urls_are_read_strictly() {
        assert_eq!(
            parse_topic("keten/polar-fish/logger-1/readings").map(|(tenant, device)| (tenant.to_string(), device)),
            Some(("polar-fish".to_owned(), "logger-1".to_owned()))
        );
        assert!(parse_topic("keten/polar-fish/logger-1/readings/extra").is_none());
        assert!(parse_topic("keten/network/logger-1/readings").is_none(), "the network tenant has no devices");
        assert!(parse_topic("other/polar-fish/logger-1/readings").is_none());
        assert_eq!(MqttConfig::parse("mqtt://broker:1884", "keten").unwrap().port, 1884);
        assert_eq!(MqttConfig::parse("mqtt://broker", "keten").unwrap().port, 1883);
        assert!(MqttConfig::parse("mqtts://broker", "keten").is_err());
        assert!(MqttConfig::parse("mqtt://:1883", "keten").is_err());
    }

    #[test]
    fn senml_without_a_base_name_is_the_topic_device() {
        let (media_type, body) =
            payload_body(br#"[{"bt": 1735689600, "t": 0, "v": 4.0, "u": "Cel"}]"#, "logger-1").unwrap();
        assert_eq!(media_type, "application/senml+json");
        let records: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(records[0]["bn"], "logger-1");
        let (media_type, _) =
            payload_body(br#"[{"device": "logger-1", "time": 0, "value": 4.0, "unit": "Cel"}]"#, "x").unwrap();
        assert_eq!(media_type, "application/json");
        let (_, named) =
            payload_body(br#"[{"bn": "logger-2", "bt": 1735689600, "v": 4.0, "u": "Cel"}]"#, "logger-1").unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&named).unwrap()[0]["bn"], "logger-2", "the ingest refuses it");
        let (_, by_name) =
            payload_body(br#"[{"n": "logger-1", "bt": 1735689600, "v": 4.0, "u": "Cel"}]"#, "logger-1").unwrap();
        assert!(serde_json::from_slice::<Value>(&by_name).unwrap()[0].get("bn").is_none(), "n names it already");
        assert!(payload_body(br#"[{"t": -60, "v": 4.0, "u": "Cel"}]"#, "logger-1").is_err(), "relative times refused");
    }
}
