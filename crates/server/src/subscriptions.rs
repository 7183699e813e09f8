//! Delivery of EPCIS query subscriptions to their webhooks.
//!
//! One worker per server polls the store for due subscriptions every [`POLL_INTERVAL`] (and at
//! once after a capture). For each, it runs the named query over the events recorded after the
//! subscription's cursor, POSTs the EPCISQueryDocument to the destination with a `GS1-Signature`
//! (HMAC-SHA256 of the body under the subscriber's `signatureToken`, lowercase hex), and moves the
//! cursor only after a 2xx answer: delivery is at least once, and since the cursor lives in the
//! database it survives a restart. Each attempt first claims its subscription for
//! [`DELIVERY_LEASE`], so API nodes sharing a database do not send its events at the same moment.
//! A failed delivery is retried after 0.5 s, 1 s, 2 s … up to [`RETRY_DELAY_MAX`].
//!
//! The same worker delivers the merchants' order-transition webhooks (`fulfilment::deliver_webhooks`).
//!
//! Limits: at most [`DELIVERY_EVENTS_MAX`] events per delivery (a stream catches up in several);
//! [`DELIVERY_TIMEOUT`] per request, [`DELIVERY_WORK_MAX`] from a claim to its record;
//! destinations are `https://` URLs (the server's certificate checked against the system's roots
//! and `--webhook-ca-file`, see [`delivery_client`]) or `http://` ones, unless the operator
//! delivers over `https://` only (`--webhooks-https-only`).

use std::time::Duration;

use network::TenantId;
use sha2::{Digest, Sha256};
use store::Store;
use store::epcis::{EventOrder, EventPosition, QueryMutation, Subscription};

use crate::epcis::{QuerySource, collect_matches, query_document};
use crate::problem::Problem;

pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often the worker escalates alarms past their deadline.
pub const ESCALATION_INTERVAL: Duration = Duration::from_secs(1);
/// How often the worker looks for lapsed order holds (`fulfilment::expire_lapsed_holds`).
pub const HOLD_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
pub const DELIVERY_EVENTS_MAX: u64 = 1000;
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an order webhook or an EPCIS subscription is one node's to deliver once claimed
/// (more than a delivery's reads, [`DELIVERY_TIMEOUT`] and its record take): no other API node
/// sends it meanwhile, and if this node stops mid-delivery, another takes it up after this.
pub const DELIVERY_LEASE: Duration = Duration::from_secs(60);
/// How long a delivery may take from its claim (the claim's write, its reads, the destination's
/// name resolved, the send): past it the delivery gives up and records a failed attempt while its
/// lease still holds, so that no other API node sends the same events meanwhile.
pub const DELIVERY_WORK_MAX: Duration = Duration::from_secs(40);
const _: () = assert!(DELIVERY_WORK_MAX.as_secs() + 10 <= DELIVERY_LEASE.as_secs(), "time to record within the lease");
/// How long the check before a send waits for the destination's name to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
pub const RETRY_DELAY_FIRST: Duration = Duration::from_millis(500);
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(600);
/// Subscriptions handled per poll.
pub const DUE_PER_POLL_MAX: u32 = 100;
/// Deliveries in flight at once (one slow destination does not hold up the others).
pub const DELIVERIES_IN_FLIGHT_MAX: usize = 16;

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block_key.map(|key_byte| key_byte ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// The delay before retry number `attempts` (1, 2, …).
pub fn retry_delay(attempts: i64) -> Duration {
    let exponent = attempts.clamp(1, 20) as u32 - 1;
    RETRY_DELAY_FIRST.saturating_mul(1 << exponent).min(RETRY_DELAY_MAX)
}

/// What every delivery of the worker keeps to.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryRules {
    /// Destinations may be private addresses (`--webhooks-to-private-addresses`).
    pub private_destinations: bool,
    /// How long a delivery may take from its claim: at most [`DELIVERY_WORK_MAX`].
    pub work_max: Duration,
}

/// Runs the delivery worker until `stop` resolves.
pub async fn run(
    store: Store,
    wake: std::sync::Arc<tokio::sync::Notify>,
    stop: tokio::sync::watch::Receiver<bool>,
    rules: DeliveryRules,
    (https_only, roots): (bool, Vec<reqwest::Certificate>),
    hold_sweep_interval: Option<Duration>,
) {
    let rules = DeliveryRules { work_max: rules.work_max.min(DELIVERY_WORK_MAX), ..rules };
    let client = match delivery_client(rules.private_destinations, https_only, &roots) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "the subscription worker cannot build its HTTP client");
            return;
        }
    };
    let mut stop = stop;
    let mut webhooks = crate::fulfilment::WebhookDeliveries::default();
    let mut subscriptions = SubscriptionDeliveries::default();
    let mut last_escalation = std::time::Instant::now() - ESCALATION_INTERVAL;
    let mut last_hold_sweep = std::time::Instant::now();
    loop {
        if *stop.borrow() {
            // Deliveries under way give up their sends and record them (due again at once), so
            // none leaves its webhook or subscription claimed until its lease ends.
            subscriptions.in_flight.finish().await;
            webhooks.finish().await;
            return;
        }
        if let Err(problem) = subscriptions.poll(&store, &client, rules, &stop).await {
            tracing::warn!(detail = %problem.detail, "subscription deliveries failed; retrying");
        }
        if last_escalation.elapsed() >= ESCALATION_INTERVAL {
            last_escalation = std::time::Instant::now();
            if let Err(problem) = crate::alarms::escalate_due(&store).await {
                tracing::warn!(detail = %problem.detail, "alarm escalation failed; retrying");
            }
        }
        if hold_sweep_interval.is_some_and(|interval| last_hold_sweep.elapsed() >= interval) {
            last_hold_sweep = std::time::Instant::now();
            if let Err(problem) = crate::fulfilment::expire_lapsed_holds(&store).await {
                tracing::warn!(detail = %problem.detail, "expiring lapsed holds failed; retrying");
            }
        }
        if let Err(problem) = webhooks.poll(&store, &client, rules, &stop).await {
            tracing::warn!(detail = %problem.detail, "order webhook deliveries failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

/// Deliveries under way (of order webhooks, or of EPCIS subscriptions), each known by what it
/// delivers (tenant, id): at most [`DELIVERIES_IN_FLIGHT_MAX`] at once; a poll neither waits for
/// them nor starts a second one for what is being delivered (its claim may still be on its way
/// to the writer, so it may still read as due).
#[derive(Default)]
pub(crate) struct InFlight {
    running: tokio::task::JoinSet<()>,
    keys: std::collections::HashMap<tokio::task::Id, (String, String)>,
}

impl InFlight {
    /// Forgets the deliveries that ended; answers how many more may start.
    pub(crate) fn reap(&mut self) -> usize {
        while let Some(ended) = self.running.try_join_next_with_id() {
            let id = match ended {
                Ok((id, ())) => id,
                Err(error) => error.id(),
            };
            self.keys.remove(&id);
        }
        DELIVERIES_IN_FLIGHT_MAX.saturating_sub(self.running.len())
    }

    pub(crate) fn contains(&self, tenant: &str, id: &str) -> bool {
        self.keys.values().any(|(key_tenant, key_id)| key_tenant == tenant && key_id == id)
    }

    pub(crate) fn spawn(&mut self, tenant: &str, id: &str, delivery: impl Future<Output = ()> + Send + 'static) {
        let handle = self.running.spawn(delivery);
        self.keys.insert(handle.id(), (tenant.to_owned(), id.to_owned()));
    }

    /// Waits for the deliveries under way (on a stop, each gives up its send and records it).
    pub(crate) async fn finish(&mut self) {
        while self.running.join_next().await.is_some() {}
        self.keys.clear();
    }
}

/// Resolves once the server is stopping: a delivery under way then gives up its send and records
/// it as failed, due again at once, so the next server (or another node) takes it up without
/// waiting for its lease to end.
pub(crate) async fn stopping(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// What a delivery records when the server stopped during it.
pub(crate) const STOPPED_DURING_DELIVERY: &str = "the server stopped during the delivery; sent again";

/// A worker's EPCIS subscription deliveries, kept across its polls ([`InFlight`]), so a
/// subscriber that does not answer holds up one delivery slot, not the other subscriptions, the
/// order webhooks, alarm escalation nor the hold sweep.
#[derive(Default)]
struct SubscriptionDeliveries {
    in_flight: InFlight,
}

impl SubscriptionDeliveries {
    async fn poll(
        &mut self,
        store: &Store,
        client: &reqwest::Client,
        rules: DeliveryRules,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), Problem> {
        let free = self.in_flight.reap();
        if free == 0 {
            return Ok(());
        }
        let now = store::now_unix_ms();
        for subscription in store.due_subscriptions(now, DUE_PER_POLL_MAX).await? {
            if self.in_flight.reap() == 0 {
                break;
            }
            if self.in_flight.contains(&subscription.tenant_id, &subscription.subscription_id) {
                continue;
            }
            let (tenant, id) = (subscription.tenant_id.clone(), subscription.subscription_id.clone());
            let delivery = deliver_claimed(store.clone(), client.clone(), subscription, now, rules, stop.clone());
            self.in_flight.spawn(&tenant, &id, delivery);
        }
        Ok(())
    }
}

/// Claims a subscription as read, delivers what it has, and records the outcome.
async fn deliver_claimed(
    store: Store,
    client: reqwest::Client,
    subscription: Subscription,
    now: i64,
    rules: DeliveryRules,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(tenant) = TenantId::parse(&subscription.tenant_id) else { return };
    // Claimed first, as read: API nodes sharing a database do not send one subscription at
    // once while the lease holds (each would send the same events); a node that stops gives up
    // its send and records it (see `stopping`), one that dies leaves it to another once the
    // lease ends.
    let deadline = tokio::time::Instant::now() + rules.work_max;
    let lease = store::now_unix_ms() + DELIVERY_LEASE.as_millis() as i64;
    let claim = QueryMutation::ClaimSubscription {
        subscription_id: subscription.subscription_id.clone(),
        seen_next_attempt_unix_ms: subscription.next_attempt_unix_ms,
        lease_until_unix_ms: lease,
    };
    match store.tenant(&tenant).write(store::Mutation::EpcisQuery(claim), None).await {
        Ok(_) => {}
        Err(store::WriteError::Conflict(_)) => return,
        Err(error) => {
            tracing::warn!(subscription = %subscription.subscription_id, %error, "claiming a subscription failed");
            return;
        }
    }
    let attempt = Attempt { store: &store, tenant: &tenant, subscription: &subscription, lease };
    let delivered = tokio::select! {
        delivered = deliver(&client, &attempt, now, rules.private_destinations) => delivered,
        () = tokio::time::sleep_until(deadline) => Err(Problem::new("unavailable", work_overran(rules.work_max))),
        () = stopping(stop) => {
            let error = Some(STOPPED_DURING_DELIVERY.to_owned());
            let _ = attempt.record(subscription.after_seq, false, store::now_unix_ms(), error, false).await;
            return;
        }
    };
    if let Err(problem) = delivered {
        tracing::warn!(subscription = %subscription.subscription_id, detail = %problem.detail, "a subscription delivery failed");
        // Whatever failed, the next attempt waits its turn from now (no retry every poll).
        let retry = store::now_unix_ms() + retry_delay(subscription.attempts + 1).as_millis() as i64;
        let _ = attempt.record(subscription.after_seq, false, retry, Some(problem.detail), false).await;
    }
}

/// Why a delivery gave up after `work_max` ([`DeliveryRules`]).
pub(crate) fn work_overran(work_max: Duration) -> String {
    format!(
        "the delivery took longer than {} s (its reads, the destination's name, the send): given up, tried again later",
        work_max.as_secs_f64()
    )
}

/// Whether a destination address is one a tenant may not reach through keten, unless the
/// operator allowed it: loopback, private, shared (carrier-grade NAT), link-local, unspecified
/// ("this network"), benchmarking, IETF protocol, multicast, reserved and broadcast IPv4; and
/// IPv6 loopback, unspecified, unique-local, link-local, site-local and multicast addresses, and
/// those that carry an IPv4 address (mapped, compatible, NAT64, 6to4) judged by it.
pub fn is_private_address(address: std::net::IpAddr) -> bool {
    match address {
        std::net::IpAddr::V4(v4) => {
            let [first, second, third, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || first == 0
                || first >= 240
                || (first == 100 && (second & 0xc0) == 64)
                || (first == 198 && (second & 0xfe) == 18)
                || (first == 192 && second == 0 && third == 0)
        }
        std::net::IpAddr::V6(v6) => {
            let segments = v6.segments();
            let octets = v6.octets();
            let embedded =
                |at: usize| std::net::Ipv4Addr::new(octets[at], octets[at + 1], octets[at + 2], octets[at + 3]);
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80
                || (segments[0] & 0xffc0) == 0xfec0
                || v6.to_ipv4().is_some_and(|v4| is_private_address(std::net::IpAddr::V4(v4)))
                || (segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_private_address(embedded(12).into()))
                || (segments[0] == 0x2002 && is_private_address(embedded(2).into()))
        }
    }
}

/// The HTTP client that delivers webhooks and EPCIS subscriptions: `http://` or `https://`
/// (TLS 1.2 or 1.3, rustls), the server's certificate checked against the system's roots and
/// `roots` (`--webhook-ca-file`). No redirects: a 301/302 would turn the POST into a bodiless GET
/// and "deliver" nothing. Unless `private_destinations`, names resolve to public addresses only
/// ([`PublicOnly`]). A system root store that cannot be read leaves `roots` alone trusted (with a
/// warning), rather than no deliveries at all.
pub fn delivery_client(
    private_destinations: bool,
    https_only: bool,
    roots: &[reqwest::Certificate],
) -> Result<reqwest::Client, reqwest::Error> {
    let builder = |system_roots: bool| {
        let mut builder = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(https_only)
            .tls_built_in_native_certs(system_roots);
        for root in roots {
            builder = builder.add_root_certificate(root.clone());
        }
        if !private_destinations {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly::from_environment()));
        }
        builder
    };
    // reqwest builds a client with no roots at all when the system has none (a slim image without
    // ca-certificates): every https delivery would then fail, so it is said at start.
    let system = rustls_native_certs::load_native_certs();
    if system.certs.is_empty() {
        let errors: Vec<String> = system.errors.iter().map(ToString::to_string).collect();
        tracing::warn!(
            errors = %errors.join("; "),
            extra_roots = roots.len(),
            "no system root certificates found: https deliveries trust --webhook-ca-file only"
        );
    }
    builder(true).build().or_else(|error| {
        tracing::warn!(%error, "the system's root certificates cannot be read; https deliveries trust --webhook-ca-file only");
        builder(false).build()
    })
}

/// The resolver of the worker's HTTP client when tenants may not reach private addresses: it
/// drops them from every name's addresses (and fails a name left with none), so a name that
/// answered a public address to [`check_destination`] and a private one at connection time (DNS
/// rebinding) still reaches no private address. The proxies the process is configured with
/// (`HTTP_PROXY`, `ALL_PROXY` …) are the operator's and resolve as they are; through a proxy the
/// proxy resolves the tenant's name, and only [`check_destination`] guards it.
#[derive(Debug, Default)]
pub struct PublicOnly {
    proxies: Vec<String>,
}

impl PublicOnly {
    /// Knows the hosts of the proxies configured in the environment.
    pub fn from_environment() -> PublicOnly {
        let proxies = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .filter_map(|value| proxy_host(&value))
            .collect();
        PublicOnly { proxies }
    }
}

/// The host of a proxy setting, with or without its scheme (`proxy.corp:3128` is taken as HTTP, as
/// the HTTP client takes it).
fn proxy_host(value: &str) -> Option<String> {
    let url = reqwest::Url::parse(value)
        .ok()
        .filter(|url| url.host_str().is_some())
        .or_else(|| reqwest::Url::parse(&format!("http://{value}")).ok())?;
    url.host_str().map(|host| host.trim_start_matches('[').trim_end_matches(']').to_owned())
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let proxy = self.proxies.iter().any(|proxy| proxy.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<std::net::SocketAddr> =
                resolved.filter(|address| proxy || !is_private_address(address.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addresses)
        })
    }
}

/// The certificates of a PEM bundle, each one a delivery client can trust as a root (checked
/// here, so a bad file stops the server at start, not its deliveries later).
pub fn roots_from_pem(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    let roots = reqwest::Certificate::from_pem_bundle(pem).map_err(|error| error.to_string())?;
    if roots.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    for (index, root) in roots.iter().enumerate() {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root.clone())
            .build()
            .map_err(|error| format!("certificate {} of {} is no usable root: {error}", index + 1, roots.len()))?;
    }
    Ok(roots)
}

/// Why a request was not answered, with its causes (`… : invalid peer certificate:
/// UnknownIssuer`): reqwest's own text names only the URL, and the sender needs the reason.
pub fn send_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    // The one request the client builds and refuses: an `http://` one (`--webhooks-https-only`).
    if error.is_builder() && error.url().is_some_and(|url| url.scheme() == "http") {
        text = format!("this operator delivers over https:// only (--webhooks-https-only): {text}");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper repeats its cause in its own text now and then.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A failed delivery's reason as kept: at most [`DELIVERY_ERROR_LENGTH_MAX`] characters.
pub fn bounded_reason(mut reason: String) -> String {
    if let Some((cut, _)) = reason.char_indices().nth(DELIVERY_ERROR_LENGTH_MAX) {
        reason.truncate(cut);
    }
    reason
}

/// The longest reason for a failed delivery kept (characters).
pub const DELIVERY_ERROR_LENGTH_MAX: usize = 1_000;

/// Whether a URL may be a delivery's destination: `https` (or `http`, unless `https_only`), with a
/// host.
pub fn is_destination(url: &reqwest::Url, https_only: bool) -> bool {
    let scheme = match https_only {
        true => url.scheme() == "https",
        false => matches!(url.scheme(), "https" | "http"),
    };
    scheme && url.host_str().is_some_and(|host| !host.is_empty())
}

/// The destinations [`is_destination`] takes, as a refusal names them.
pub fn destination_schemes(https_only: bool) -> &'static str {
    match https_only {
        true => "an https:// URL (this operator delivers over https:// only)",
        false => "an https:// (or http://) URL",
    }
}

/// Refuses a destination that resolves to a private address (server-side request forgery).
pub async fn check_destination(url: &str, private_destinations: bool) -> Result<(), String> {
    if private_destinations {
        return Ok(());
    }
    let parsed = reqwest::Url::parse(url).map_err(|error| error.to_string())?;
    let host = parsed.host_str().ok_or("no host")?.to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let lookup = tokio::net::lookup_host((host.trim_start_matches('[').trim_end_matches(']'), port));
    let addresses = tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
        .await
        .map_err(|_| format!("{host} did not resolve within {} s", RESOLVE_TIMEOUT.as_secs()))?
        .map_err(|error| format!("{host} does not resolve: {error}"))?;
    for address in addresses {
        if is_private_address(address.ip()) {
            return Err(format!("{host} resolves to the private address {}", address.ip()));
        }
    }
    Ok(())
}

/// A delivery attempt of a subscription this node claimed until `lease` (the store records its
/// outcome only while the subscription holds that lease).
struct Attempt<'a> {
    store: &'a Store,
    tenant: &'a TenantId,
    subscription: &'a Subscription,
    lease: i64,
}

impl Attempt<'_> {
    /// Records the attempt's outcome, which ends its lease: the subscription is due again at
    /// `next_attempt_unix_ms` (never the time it was read at, so a node that read it before the
    /// claim cannot claim it with what it read).
    async fn record(
        &self,
        after_seq: i64,
        moved: bool,
        next_attempt_unix_ms: i64,
        error: Option<String>,
        delivered: bool,
    ) -> Result<(), Problem> {
        let change = QueryMutation::RecordDelivery {
            lease_until_unix_ms: self.lease,
            subscription_id: self.subscription.subscription_id.clone(),
            after_seq,
            moved,
            delivered,
            next_attempt_unix_ms: next_attempt_unix_ms.max(self.subscription.next_attempt_unix_ms.saturating_add(1)),
            error: error.map(bounded_reason),
        };
        self.store.tenant(self.tenant).write(store::Mutation::EpcisQuery(change), None).await?;
        Ok(())
    }
}

async fn deliver(
    client: &reqwest::Client,
    attempt: &Attempt<'_>,
    now: i64,
    private_destinations: bool,
) -> Result<(), Problem> {
    let Attempt { store, tenant, subscription, .. } = *attempt;
    let Some(definition) = store.tenant(tenant).epcis_query(&subscription.query_name).await? else {
        return Ok(());
    };
    let definition: serde_json::Value = serde_json::from_str(&definition).map_err(Problem::internal)?;
    let source = QuerySource::from_definition(&subscription.query_name, &definition)?;
    let query = source.prepare(store, tenant).await?;
    let after = EventPosition { key: subscription.after_seq, seq: subscription.after_seq };
    // Read before the query: when the query reads to the end, every event up to here was seen
    // (sequence numbers are committed in order), visible to this tenant or not.
    let last_seq = store.epcis_last_seq().await?;
    let (events, position, exhausted) =
        collect_matches(store, tenant, &query, EventOrder::RecordAscending, Some(after), DELIVERY_EVENTS_MAX).await?;
    let mut scanned_to = position.map_or(subscription.after_seq, |position| position.seq);
    if exhausted {
        scanned_to = scanned_to.max(last_seq);
    }
    let schedule = match &subscription.schedule {
        Some(text) => {
            let value: serde_json::Value = serde_json::from_str(text).map_err(Problem::internal)?;
            Some(epcis::schedule::Schedule::parse(&value).map_err(Problem::internal)?)
        }
        None => None,
    };
    let next_fire = || {
        let now = jiff::Timestamp::from_millisecond(now).unwrap_or_else(|_| jiff::Timestamp::now());
        schedule.as_ref().and_then(|schedule| schedule.next_after(now)).map_or(i64::MAX, |time| time.as_millisecond())
    };
    if events.is_empty() && !(schedule.is_some() && subscription.report_if_empty) {
        // Nothing to send: remember how far was read (so it is not read again), and for a
        // schedule wait for its next time. (Recorded even when the cursor stays: it ends the lease.)
        let next = if schedule.is_some() { next_fire() } else { now };
        return attempt.record(scanned_to.max(subscription.after_seq), true, next, None, false).await;
    }
    if let Err(reason) = check_destination(&subscription.destination, private_destinations).await {
        return Err(Problem::new("invalid-parameter", format!("destination refused: {reason}")));
    }
    let body = query_document(events, &subscription.query_name, Some(&subscription.subscription_id)).to_string();
    let mut request = client
        .post(&subscription.destination)
        .header("content-type", "application/ld+json")
        .header("gs1-epcis-version", "2.0.0")
        .header("gs1-cbv-version", "2.0.0");
    if let Some(token) = &subscription.signature_token {
        request = request.header("gs1-signature", hex::encode(hmac_sha256(token.as_bytes(), body.as_bytes())));
    }
    let outcome = request.body(body).send().await;
    let failure = match outcome {
        Ok(response) if response.status().is_success() => None,
        Ok(response) if response.status().is_redirection() => {
            Some(format!("the destination answered {} (redirects are not followed)", response.status()))
        }
        Ok(response) => Some(format!("the destination answered {}", response.status())),
        Err(error) => Some(format!("the destination could not be reached: {}", send_error(&error))),
    };
    match failure {
        None => {
            // A schedule with more waiting catches up at once instead of at its next time.
            let next = if schedule.is_some() && exhausted { next_fire() } else { now };
            attempt.record(scanned_to, true, next, None, true).await
        }
        Some(error) => {
            // From the failure, not the poll: a slow send does not use up the delay.
            let retry = store::now_unix_ms() + retry_delay(subscription.attempts + 1).as_millis() as i64;
            attempt.record(subscription.after_seq, false, retry, Some(error), false).await
        }
    }
}

/// Checks `GS1-Signature` the way a subscriber would.
pub fn signature_matches(token: &str, body: &[u8], signature: &str) -> bool {
    hex::encode(hmac_sha256(token.as_bytes(), body)) == signature.trim().to_ascii_lowercase()
}

/// The subscription's initial cursor: the last event recorded before `initial_record_time_ms`
/// (now when absent).
pub async fn initial_cursor(store: &Store, initial_record_time_ms: Option<i64>) -> Result<i64, Problem> {
    Ok(match initial_record_time_ms {
        None => store.epcis_last_seq().await?,
        Some(time) => store.epcis_seq_before(time).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_usable_certificates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap().pem();
        assert_eq!(roots_from_pem(ca.as_bytes()).unwrap().len(), 1);
        assert_eq!(roots_from_pem(format!("{ca}\n{ca}").as_bytes()).unwrap().len(), 2, "a bundle");
        assert!(roots_from_pem(b"").unwrap_err().contains("no PEM certificate"));
        assert!(roots_from_pem(key.serialize_pem().as_bytes()).unwrap_err().contains("no PEM certificate"));
        let junk = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
        let refused = roots_from_pem(format!("{ca}{junk}").as_bytes()).unwrap_err();
        assert!(refused.contains("certificate 2 of 2"), "{refused}");
    }

    #[test]
    fn destinations_are_http_or_https_urls_with_a_host() {
        for (url, expected, https_only_expected) in [
            ("https://merchant.example/hooks", true, true),
            ("http://merchant.example:8080/hooks", true, false),
            ("HTTPS://merchant.example", true, true),
            ("HTTP://merchant.example", true, false),
            ("ftp://merchant.example/", false, false),
            ("file:///etc/passwd", false, false),
            ("data:text/plain,hello", false, false),
            ("unix:/run/keten.sock", false, false),
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            assert_eq!(is_destination(&parsed, false), expected, "{url}");
            assert_eq!(is_destination(&parsed, true), https_only_expected, "{url}, https only");
        }
    }

    #[tokio::test]
    async fn a_failed_delivery_names_its_causes_within_the_limit() {
        // Nothing listens on port 9 of loopback (discard, unused here): the connection is refused.
        let client = delivery_client(true, false, &[]).unwrap();
        let error = client.post("http://127.0.0.1:9/hook").send().await.unwrap_err();
        let text = send_error(&error);
        assert!(text.starts_with(&error.to_string()) && text.len() > error.to_string().len(), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
        let long = client.post(format!("http://127.0.0.1:9/{}", "é".repeat(2_000))).send().await.unwrap_err();
        assert!(send_error(&long).chars().count() > DELIVERY_ERROR_LENGTH_MAX);
        assert_eq!(bounded_reason(send_error(&long)).chars().count(), DELIVERY_ERROR_LENGTH_MAX);
        assert_eq!(bounded_reason("é".repeat(10)), "é".repeat(10), "a short reason is kept whole");
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 1 and 2 of RFC 4231, and case 6 (a key longer than the block).
        assert_eq!(
            hex::encode(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn private_addresses_are_recognised() {
        for (address, private) in [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("192.168.0.1", true),
            ("169.254.169.254", true),
            ("::1", true),
            ("fd00::1", true),
            ("::ffff:127.0.0.1", true),
            ("93.184.216.34", false),
            ("2606:4700::1111", false),
            ("0.1.2.3", true),
            ("100.64.0.1", true),
            ("100.127.255.254", true),
            ("100.128.0.1", false),
            ("198.18.0.1", true),
            ("198.20.0.1", false),
            ("192.0.0.8", true),
            ("224.0.0.251", true),
            ("240.0.0.1", true),
            ("255.255.255.255", true),
            ("ff02::1", true),
            ("fec0::1", true),
            ("::127.0.0.1", true),
            ("64:ff9b::7f00:1", true),
            ("64:ff9b::a9fe:a9fe", true),
            ("64:ff9b::5db8:d822", false),
            ("2002:7f00:1::", true),
            ("2002:0a00:0001::1", true),
            ("2002:5db8:d822::1", false),
        ] {
            assert_eq!(is_private_address(address.parse().unwrap()), private, "{address}");
        }
    }

    /// A name is resolved at connection time without its private addresses (so one that turns
    /// private after [`check_destination`] looked, DNS rebinding, reaches none), except a proxy's.
    #[tokio::test]
    async fn the_worker_resolves_names_to_public_addresses_only() {
        use reqwest::dns::Resolve;
        let name = |host: &str| host.parse::<reqwest::dns::Name>().unwrap();
        let refused = PublicOnly::default().resolve(name("localhost")).await.err().expect("localhost is refused");
        assert_eq!(refused.to_string(), "localhost resolves to no public address");
        let proxied = PublicOnly { proxies: vec!["LOCALHOST".into()] };
        let addresses: Vec<std::net::SocketAddr> = proxied.resolve(name("localhost")).await.unwrap().collect();
        assert!(!addresses.is_empty() && addresses.iter().all(|address| address.ip().is_loopback()), "{addresses:?}");
    }

    #[test]
    fn proxy_settings_name_their_host_with_or_without_a_scheme() {
        assert_eq!(proxy_host("http://proxy.corp:3128").as_deref(), Some("proxy.corp"));
        assert_eq!(proxy_host("proxy.corp:3128").as_deref(), Some("proxy.corp"));
        assert_eq!(proxy_host("socks5h://10.0.0.5:1080").as_deref(), Some("10.0.0.5"));
        assert_eq!(proxy_host("http://[fd00::5]:3128").as_deref(), Some("fd00::5"));
    }

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(retry_delay(1), Duration::from_millis(500));
        assert_eq!(retry_delay(2), Duration::from_secs(1));
        assert_eq!(retry_delay(5), Duration::from_secs(8));
        assert_eq!(retry_delay(40), RETRY_DELAY_MAX);
    }
}
