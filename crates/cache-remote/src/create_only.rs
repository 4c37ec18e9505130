//! Create-only multipart uploads on S3. S3 (and S3-compatible servers)
//! honour `If-None-Match: *` on CompleteMultipartUpload, so a large entry
//! uploaded in parts is published first-writer-wins like a single PUT, but
//! object_store only sends it for its own copies. This connector adds the
//! header to every completion the cache's client sends: the cache completes
//! multipart uploads only to publish entries.

use async_trait::async_trait;
use http::header::{HeaderValue, IF_NONE_MATCH};
use http::Method;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::ClientOptions;

#[derive(Debug, Default)]
pub(crate) struct CreateOnlyCompletion;

impl HttpConnector for CreateOnlyCompletion {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(AddIfNoneMatch(ReqwestConnector::default().connect(options)?)))
    }
}

#[derive(Debug)]
struct AddIfNoneMatch(HttpClient);

/// A CompleteMultipartUpload: `POST <object>?uploadId=...`.
fn is_completion(req: &HttpRequest) -> bool {
    req.method() == Method::POST && req.uri().query().is_some_and(|q| q.split('&').any(|p| p.starts_with("uploadId=")))
}

#[async_trait]
impl HttpService for AddIfNoneMatch {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if is_completion(&req) {
            req.headers_mut().insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        }
        self.0.execute(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_completions_are_made_create_only() {
        let req = |method: Method, uri: &str| {
            http::Request::builder().method(method).uri(uri).body(bytes::Bytes::new().into()).unwrap()
        };
        assert!(is_completion(&req(Method::POST, "http://h/b/k.npy?uploadId=abc")));
        assert!(!is_completion(&req(Method::POST, "http://h/b/k.npy?uploads")));
        assert!(!is_completion(&req(Method::PUT, "http://h/b/k.npy?partNumber=1&uploadId=abc")));
        assert!(!is_completion(&req(Method::GET, "http://h/b/k.npy")));
    }
}
