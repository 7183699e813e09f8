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
//! - **Reconnects** with a backoff from 0.5 s doubling to 30 s; subscriptions are renewed on each
//!   connection.
//! - A message that cannot be ingested at all (not JSON, an unknown tenant) is logged and
//!   acknowledged (redelivering it would not help); rejected records are logged with the count.

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

/// The payload as a readings body of the topic's device: its media type and bytes. SenML packs
/// without a base name get the device as theirs; a JSON batch (records with `device`) is kept.
pub fn payload_body(payload: &[u8], device: &str) -> (&'static str, Vec<u8>) {
    let Ok(Value::Array(mut records)) = serde_json::from_slice::<Value>(payload) else {
        return ("application/json", payload.to_vec());
    };
    let is_batch = records.iter().any(|record| record.get("device").is_some());
    if is_batch {
        return ("application/json", payload.to_vec());
    }
    if let Some(Value::Object(first)) = records.first_mut()
        && !first.contains_key("bn")
    {
        first.insert("bn".to_owned(), Value::String(device.to_owned()));
    }
    ("application/senml+json", serde_json::to_vec(&records).unwrap_or_else(|_| payload.to_vec()))
}

/// Ingests one message; answers whether it may be acknowledged (stored, or hopeless).
async fn handle(store: &Store, publish: &Publish) -> bool {
    let Some((tenant, device)) = parse_topic(&publish.topic) else {
        tracing::warn!(topic = %publish.topic, "an MQTT message on a topic that names no tenant and device; dropped");
        return true;
    };
    if publish.payload.len() > MESSAGE_BYTES_MAX {
        tracing::warn!(topic = %publish.topic, bytes = publish.payload.len(), "an MQTT message over the size limit; dropped");
        return true;
    }
    let (media_type, body) = payload_body(&publish.payload, &device);
    // Readings of other devices than the topic's are not this message's to send.
    match crate::readings::ingest(store, &tenant, media_type, &body, jiff::Timestamp::now(), Some(&device)).await {
        Ok(ingested) => {
            if !ingested.rejected.is_empty() {
                let first = ingested.rejected.first().map(|(index, reason)| format!("record {index}: {reason}"));
                tracing::warn!(topic = %publish.topic, rejected = ingested.rejected.len(), first = ?first,
                    accepted = ingested.accepted, "MQTT readings rejected");
            }
            true
        }
        // The database is out of reach or overloaded: keep the message for redelivery.
        Err(problem) if problem.status >= 500 => {
            tracing::warn!(topic = %publish.topic, detail = %problem.detail, "MQTT readings not stored; not acknowledged");
            false
        }
        Err(problem) => {
            tracing::warn!(topic = %publish.topic, detail = %problem.detail, "an MQTT message is no readings batch; dropped");
            true
        }
    }
}

/// Subscribes and ingests until `stopped` turns true.
pub async fn run(store: Store, config: MqttConfig, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut options = MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(false);
    options.set_manual_acks(true);
    options.set_max_packet_size(MESSAGE_BYTES_MAX + 1024, MESSAGE_BYTES_MAX + 1024);
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
                backoff = BACKOFF_FIRST;
                if let Err(error) = client.subscribe(TOPIC_FILTER, QoS::AtLeastOnce).await {
                    tracing::warn!(%error, "MQTT subscribe failed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if handle(&store, &publish).await
                    && let Err(error) = client.ack(&publish).await
                {
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
        let (media_type, body) = payload_body(br#"[{"t": 0, "v": 4.0, "u": "Cel"}]"#, "logger-1");
        assert_eq!(media_type, "application/senml+json");
        let records: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(records[0]["bn"], "logger-1");
        let (media_type, _) = payload_body(br#"[{"device": "logger-1", "time": 0, "value": 4.0, "unit": "Cel"}]"#, "x");
        assert_eq!(media_type, "application/json");
        let (_, named) = payload_body(br#"[{"bn": "logger-2", "t": 0, "v": 4.0, "u": "Cel"}]"#, "logger-1");
        assert_eq!(serde_json::from_slice::<Value>(&named).unwrap()[0]["bn"], "logger-2", "the ingest refuses it");
    }
}
