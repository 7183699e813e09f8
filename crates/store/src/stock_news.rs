//! PostgreSQL: what one API node tells the others about stock that came in, and about what
//! allocating it reads (products, sites and lanes) when that changed, so their writers' caches do
//! not allocate from a view older than it.
//!
//! Each writer caches the balances and rules of the (tenant, GTIN)s it read, and the sites and
//! lanes each tenant sees, for up to `fulfilment::CACHE_LIFETIME`. A write that takes units (an
//! order's reserve) is guarded where it is written, so a node whose cache holds units another node
//! took fails its guard and reads again: no cache can oversell. Units that *came in* on another
//! node (a receipt, a transfer in, a return, a count above the on-hand, a release, a lot made
//! available) trip no guard: a node whose cache still covers an order allocates it without them,
//! though a new lot may be nearer or expire first. Nor does a product's new rule (its shelf life
//! left at delivery, its temperature class) or a site's or lane's change (a zone, a cut-off, a
//! transit time). So a batch that writes such a change announces it with `pg_notify` in its
//! transaction (delivered when it commits): a (tenant, GTIN) for stock and products, a (tenant,
//! [`SITES`]) for sites and lanes (the network's own, which every tenant sees, as the tenant
//! `network`). Every node listens, and a writer forgets the announced entries before its next
//! batch ([`StockNews::forget_stale`]), except the writer that announced them: its cache holds
//! the change already (each balance it wrote read back, each product read again, its sites
//! forgotten when it wrote them). An announcement can come a moment after a batch started,
//! which then allocates from the older view; a listener that lost its connection (announcements
//! missed) makes its writers forget every entry.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use crate::fulfilment::WriterCache;

/// The channel the announcements travel on.
pub const STOCK_CHANNEL: &str = "keten_stock";

/// What a line names instead of a GTIN when a tenant's sites or lanes changed (a GTIN is 14
/// digits, so the two do not meet).
pub const SITES: &str = "sites";

/// The most bytes of one announcement (PostgreSQL takes up to 8,000), and the most one line (a
/// tenant's id and a GTIN) may add past [`ANNOUNCEMENT_BYTES_MAX`] minus it.
const ANNOUNCEMENT_BYTES_MAX: usize = 7_000;
const ANNOUNCEMENT_LINE_BYTES_MAX: usize = 300;
// A line: the tenant's id, a tab, a GTIN of 14 digits and the newline (16 bytes besides the id).
const _: () = assert!(network::TenantId::LENGTH_MAX + 16 <= ANNOUNCEMENT_LINE_BYTES_MAX);

/// What this node heard, waiting for its writers: from the other nodes, and from its own writers
/// (with several writer tasks, each has a cache of its own; the writer that wrote the change is
/// left out).
#[derive(Debug)]
pub(crate) struct StockNews {
    /// This node among the listeners: random, named in each announcement's first line
    /// (`@<node>/<writer>`), so the announcing writer does not forget its own changes.
    node: u64,
    /// What each of this node's writers (each with its cache) has not forgotten yet.
    heard: Mutex<Vec<Heard>>,
    /// The listening task, ended when the store closes.
    listening: Mutex<Option<tokio::task::AbortHandle>>,
}

#[derive(Debug, Default)]
struct Heard {
    /// Announcements may have been missed: every entry is stale.
    everything: bool,
    gtins: HashSet<(String, String)>,
    /// The tenants whose sites or lanes changed (`network`: every tenant's).
    sites: HashSet<String>,
}

impl StockNews {
    pub(crate) fn new() -> StockNews {
        StockNews { node: rand::random(), heard: Mutex::new(Vec::new()), listening: Mutex::new(None) }
    }

    /// Starts listening on a connection of its own to `url`, until [`StockNews::stop`].
    pub(crate) async fn listen(self: &std::sync::Arc<Self>, url: &str) -> Result<(), sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(STOCK_CHANNEL).await?;
        let news = self.clone();
        let task = tokio::spawn(async move {
            let mut warned: Option<std::time::Instant> = None;
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => news.heard(notification.payload()),
                    // The connection was lost (and is opened again): what was said meanwhile is
                    // not known.
                    Ok(None) => news.missed(),
                    Err(error) => {
                        if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                            warned = Some(std::time::Instant::now());
                            tracing::warn!(%error, "listening for other nodes' stock failed; trying again every second");
                        }
                        news.missed();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        if let Ok(mut listening) = self.listening.lock() {
            *listening = Some(task.abort_handle());
        }
        Ok(())
    }

    /// Stops listening.
    pub(crate) fn stop(&self) {
        if let Some(task) = self.listening.lock().ok().and_then(|mut listening| listening.take()) {
            task.abort();
        }
    }

    /// A writer of this node: answers its number for [`StockNews::forget_stale`].
    pub(crate) fn writer(&self) -> usize {
        let mut heard = self.heard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        heard.push(Heard::default());
        heard.len() - 1
    }

    fn heard(&self, payload: &str) {
        // `@<node>/<writer>`: who announced it (a line without a tab).
        let sender = payload
            .lines()
            .next()
            .and_then(|line| line.strip_prefix('@'))
            .and_then(|sender| sender.split_once('/'))
            .and_then(|(node, writer)| Some((u64::from_str_radix(node, 16).ok()?, writer.parse::<usize>().ok()?)));
        let own = match sender {
            Some((node, writer)) if node == self.node => Some(writer),
            _ => None,
        };
        let lines: Vec<(&str, &str)> = payload.lines().filter_map(|line| line.split_once('\t')).collect();
        let mut heard = self.heard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, writer) in
            heard.iter_mut().enumerate().filter(|(index, writer)| !writer.everything && own != Some(*index))
        {
            for (tenant, subject) in &lines {
                if *subject == SITES {
                    writer.sites.insert(tenant.to_string());
                } else {
                    writer.gtins.insert((tenant.to_string(), subject.to_string()));
                }
            }
        }
    }

    fn missed(&self) {
        let mut heard = self.heard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for writer in heard.iter_mut() {
            writer.everything = true;
            writer.gtins.clear();
            writer.sites.clear();
        }
    }

    /// Makes writer `writer`'s cache forget what was announced since its last call.
    pub(crate) fn forget_stale(&self, writer: usize, cache: &mut WriterCache) {
        let mut heard = self.heard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(heard) = heard.get_mut(writer) else { return };
        if std::mem::take(&mut heard.everything) {
            heard.gtins.clear();
            heard.sites.clear();
            cache.forget_stock(None);
            cache.forget_networks(None);
            return;
        }
        for (tenant, gtin) in heard.gtins.drain() {
            cache.forget_stock(Some((&tenant, &gtin)));
        }
        for tenant in heard.sites.drain() {
            cache.forget_networks((tenant != network::NETWORK_TENANT).then_some(tenant.as_str()));
        }
    }

    /// What the batch of `writes` announces besides its stock ([`FlushPlan::stocked`]): the
    /// (tenant, GTIN) of each product written and the (tenant, [`SITES`]) of each site or lane.
    ///
    /// [`FlushPlan::stocked`]: crate::fulfilment::FlushPlan::stocked
    pub(crate) fn changes_of(writes: &[&crate::writer::Write]) -> Vec<(String, String)> {
        use crate::writer::Mutation;
        let mut changes = Vec::new();
        for write in writes {
            // (Most writes are orders, which announce nothing: nothing is built for them.)
            let subject = match &write.mutation {
                Mutation::PutProduct { product, .. } => product.gtin.as_str(),
                Mutation::DeleteProduct { gtin } => gtin.as_str(),
                mutation if mutation.changes_network() => SITES,
                _ => continue,
            };
            changes.push((write.tenant_id.as_str().to_owned(), subject.to_owned()));
        }
        changes
    }

    /// Announces, in the transaction on `conn` (delivered if it commits), that stock of these
    /// (tenant, GTIN)s came in or their product changed, or (tenant, [`SITES`]) their sites or
    /// lanes; `writer` (this node's writer that wrote them) does not forget them.
    pub(crate) async fn announce(
        &self,
        connection: &mut sqlx::PgConnection,
        writer: Option<usize>,
        gtins: &[(String, String)],
    ) -> Result<(), sqlx::Error> {
        for payload in self.payloads(writer, gtins) {
            sqlx::query("SELECT pg_notify($1, $2)").bind(STOCK_CHANNEL).bind(payload).execute(&mut *connection).await?;
        }
        Ok(())
    }

    /// The announcements of `gtins` by `writer`: each at most [`ANNOUNCEMENT_BYTES_MAX`], its
    /// first line the sender.
    fn payloads(&self, writer: Option<usize>, gtins: &[(String, String)]) -> Vec<String> {
        let sender = writer.map(|writer| format!("@{:x}/{writer}", self.node));
        let (mut payloads, mut payload) = (Vec::new(), String::new());
        for (index, (tenant, gtin)) in gtins.iter().enumerate() {
            if payload.is_empty() {
                if let Some(sender) = &sender {
                    payload.push_str(sender);
                    payload.push('\n');
                }
            } else {
                payload.push('\n');
            }
            payload.push_str(tenant);
            payload.push('\t');
            payload.push_str(gtin);
            if payload.len() >= ANNOUNCEMENT_BYTES_MAX - ANNOUNCEMENT_LINE_BYTES_MAX || index + 1 == gtins.len() {
                debug_assert!(payload.len() <= ANNOUNCEMENT_BYTES_MAX);
                payloads.push(std::mem::take(&mut payload));
            }
        }
        payloads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard_by(news: &StockNews, writer: usize) -> (bool, Vec<(String, String)>) {
        let heard = news.heard.lock().unwrap();
        let mut gtins: Vec<(String, String)> = heard[writer].gtins.iter().cloned().collect();
        gtins.sort();
        (heard[writer].everything, gtins)
    }

    /// Each writer hears every announcement and forgets on its own; a lost connection makes
    /// every writer forget everything.
    #[test]
    fn each_writer_forgets_what_was_announced_once() {
        let news = StockNews::new();
        let (first, second) = (news.writer(), news.writer());
        news.heard("acme\t08712345000011\nacme\t08712345000028\nno tab here");
        let both =
            vec![("acme".to_owned(), "08712345000011".to_owned()), ("acme".to_owned(), "08712345000028".to_owned())];
        assert_eq!(heard_by(&news, first), (false, both.clone()));
        let mut cache = WriterCache::default();
        news.forget_stale(first, &mut cache);
        assert_eq!(heard_by(&news, first), (false, Vec::new()));
        assert_eq!(heard_by(&news, second), (false, both), "the other writer has not forgotten yet");
        news.missed();
        assert_eq!(heard_by(&news, second), (true, Vec::new()));
        news.heard("acme\t08712345000035");
        assert_eq!(heard_by(&news, second), (true, Vec::new()), "everything is stale already");
        news.forget_stale(second, &mut cache);
        assert_eq!(heard_by(&news, second), (false, Vec::new()));
    }

    /// The writer that announced a change does not forget it (its cache holds it); the node's
    /// other writers, and other nodes', do. A long announcement is cut into several, each naming
    /// its sender.
    #[test]
    fn the_announcing_writer_keeps_its_own_changes() {
        let (news, other_node) = (StockNews::new(), StockNews::new());
        let (first, second) = (news.writer(), news.writer());
        let elsewhere = other_node.writer();
        let gtins: Vec<(String, String)> = (0..1_000).map(|n| ("acme".to_owned(), format!("{n:014}"))).collect();
        let payloads = news.payloads(Some(first), &gtins);
        assert!(payloads.len() > 1 && payloads.iter().all(|payload| payload.len() <= ANNOUNCEMENT_BYTES_MAX));
        for payload in &payloads {
            assert!(payload.starts_with(&format!("@{:x}/{first}\n", news.node)), "{payload}");
            news.heard(payload);
            other_node.heard(payload);
        }
        assert_eq!(heard_by(&news, first), (false, Vec::new()), "its own");
        let mut all = gtins.clone();
        all.sort();
        assert_eq!(heard_by(&news, second), (false, all.clone()));
        assert_eq!(heard_by(&other_node, elsewhere), (false, all), "the same writer number on another node");
        // Without a sender (as an older node announces), every writer forgets.
        news.heard(&news.payloads(None, &gtins[..1])[0]);
        assert_eq!(heard_by(&news, first).1, gtins[..1]);
    }

    /// A tenant's sites line makes its network snapshot forgotten, the network's every tenant's;
    /// a GTIN line only that stock.
    #[test]
    fn a_sites_line_forgets_the_tenants_network() {
        let news = StockNews::new();
        let writer = news.writer();
        let mut cache = WriterCache::default();
        for tenant in ["acme", "beta"] {
            cache.hold_network(tenant);
        }
        news.heard("acme\t08712345000011");
        news.forget_stale(writer, &mut cache);
        assert_eq!(cache.networks_held(), ["acme", "beta"]);
        news.heard("acme\tsites");
        assert_eq!(heard_by(&news, writer), (false, Vec::new()), "not a GTIN");
        news.forget_stale(writer, &mut cache);
        assert_eq!(cache.networks_held(), ["beta"]);
        cache.hold_network("acme");
        news.heard("network\tsites");
        news.forget_stale(writer, &mut cache);
        assert!(cache.networks_held().is_empty());
    }
}
