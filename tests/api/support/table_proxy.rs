//! A counting, slowing, failing proxy in front of Azurite's Table endpoint: the handler's Table
//! Storage requests go through it unchanged (SharedKeyLite signs the path, not the host), and a
//! test can count them, hold reads back as a slow store would, or make the store unavailable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::Response;

use super::azurite::Azurite;
use super::loopback_server::{self, Handler, Received};

pub struct TableProxy {
    /// `AzureWebJobsStorage` for the handler: Azurite's account, reached through the proxy.
    pub connection_string: String,
    reads: Arc<AtomicUsize>,
    faults: Arc<Mutex<Faults>>,
}

#[derive(Default)]
struct Faults {
    /// Reads of this RowKey wait this long.
    slow_row: Option<(String, Duration)>,
    /// Every request waits this long.
    slow: Option<Duration>,
    /// Every request gets a 503, as from an unavailable account.
    down: bool,
}

impl TableProxy {
    pub async fn start(azurite: &Azurite) -> TableProxy {
        let target = azurite
            .table_endpoint
            .rsplit_once('/')
            .map(|(base, _)| base.to_string())
            .unwrap();
        let account = azurite
            .table_endpoint
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let reads = Arc::new(AtomicUsize::new(0));
        let faults: Arc<Mutex<Faults>> = Arc::default();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let handler: Handler = {
            let (reads, faults) = (Arc::clone(&reads), Arc::clone(&faults));
            Arc::new(move |received: Received| {
                let target = target.clone();
                let client = client.clone();
                let path = received
                    .uri
                    .path_and_query()
                    .map_or("/".to_string(), ToString::to_string);
                // Entity and query reads (not the table creation, not writes).
                let is_read = received.method == hyper::Method::GET;
                if is_read {
                    reads.fetch_add(1, Ordering::SeqCst);
                }
                let (delay, down) = {
                    let faults = faults.lock().unwrap();
                    let row_delay = faults
                        .slow_row
                        .as_ref()
                        .filter(|(row, _)| is_read && path.contains(&format!("RowKey='{row}'")))
                        .map(|(_, delay)| *delay);
                    (row_delay.or(faults.slow), faults.down)
                };
                Box::pin(async move {
                    if let Some(delay) = delay {
                        tokio::time::sleep(delay).await;
                    }
                    if down {
                        return Ok(Response::builder()
                            .status(503)
                            .body(Full::new(bytes::Bytes::new()))
                            .unwrap());
                    }
                    let mut request = client.request(received.method, format!("{target}{path}"));
                    for (name, value) in &received.headers {
                        if name != "host" {
                            request = request.header(name, value);
                        }
                    }
                    let answer = request.body(received.body).send().await.map_err(|_| ())?;
                    let mut response = Response::builder().status(answer.status().as_u16());
                    for (name, value) in answer.headers() {
                        response = response.header(name.as_str(), value.as_bytes());
                    }
                    let body = answer.bytes().await.map_err(|_| ())?;
                    Ok(response.body(Full::new(body)).unwrap())
                })
            })
        };
        let addr = loopback_server::serve(handler, None).await;
        let endpoint = format!("http://{addr}/{account}");
        let connection_string = azurite
            .connection_string
            .replace(&azurite.table_endpoint, &endpoint);
        TableProxy {
            connection_string,
            reads,
            faults,
        }
    }

    /// GET requests so far (entity reads and partition queries).
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// Holds every read of the row whose RowKey is `row` back by `delay`.
    pub fn slow_reads_of(&self, row: &str, delay: Duration) {
        self.faults.lock().unwrap().slow_row = Some((row.to_string(), delay));
    }

    /// Holds every request back by `delay` (`None`: no more).
    pub fn slow_all(&self, delay: Option<Duration>) {
        self.faults.lock().unwrap().slow = delay;
    }

    /// Makes the store answer 503 to everything, or stop doing so.
    pub fn set_down(&self, down: bool) {
        self.faults.lock().unwrap().down = down;
    }
}
