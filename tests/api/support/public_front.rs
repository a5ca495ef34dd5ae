//! The host emulator's public side: an HTTP listener on 127.0.0.1 that hands every request to
//! [`TestApp::send`], as the Functions host listens for clients (`func start` on :7071). Lets a
//! real client (a published npm package, a browser) call the app through either protocol mode.
//! Records the raw target of each request, so a test can show what a client sent.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use super::TestApp;
use super::host_emulator::PublicRequest;
use super::loopback_server::{self, Handler, Received};

pub struct PublicFront {
    /// `http://127.0.0.1:{port}`.
    pub base_url: String,
    targets: Arc<Mutex<Vec<String>>>,
}

impl PublicFront {
    pub async fn serve(app: Arc<TestApp>) -> PublicFront {
        let targets = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = {
            let targets = Arc::clone(&targets);
            Arc::new(move |received: Received| {
                let app = Arc::clone(&app);
                let target = received
                    .uri
                    .path_and_query()
                    .map_or("/".to_string(), ToString::to_string);
                targets.lock().unwrap().push(target.clone());
                Box::pin(async move {
                    let mut request =
                        PublicRequest::new(received.method, target).body(received.body.to_vec());
                    for (name, value) in &received.headers {
                        if let Ok(value) = value.to_str() {
                            request = request.header(name.as_str(), value);
                        }
                    }
                    let answer = app.send(request).await;
                    let mut response = Response::builder().status(answer.status);
                    for (name, value) in &answer.headers {
                        response = response.header(name, value);
                    }
                    Ok(response.body(Full::new(Bytes::from(answer.body))).unwrap())
                })
            })
        };
        let addr = loopback_server::serve(handler, None).await;
        PublicFront {
            base_url: format!("http://{addr}"),
            targets,
        }
    }

    /// The path and query of every request so far, as the client sent them.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}
