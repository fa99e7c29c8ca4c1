// SPDX-License-Identifier: Apache-2.0
// S3Client's requests through libcurl: one perform() that signs (CURLOPT_AWS_SIGV4), streams
// the request body from memory or a file and the response body to a sink, and turns transport
// failures and S3's <Error> answers into Errors; the operations build on it.
#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>

#include "common/sha256.h"
#include "storage/s3.h"
#include "storage/s3_sigv4.h"
#include "storage/s3_xml.h"

namespace berth::storage {

namespace detail {

// Idle easy handles: a handle keeps its connections open between requests.
class S3Connections {
 public:
  S3Connections() = default;
  ~S3Connections() {
    for (CURL* h : idle_) {
      curl_easy_cleanup(h);
    }
  }
  S3Connections(const S3Connections&) = delete;
  S3Connections& operator=(const S3Connections&) = delete;

  CURL* take() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void give(CURL* h) {
    curl_easy_reset(h);
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdle) {
      idle_.push_back(h);
    } else {
      curl_easy_cleanup(h);
    }
  }

 private:
  static constexpr size_t kMaxIdle = 16;
  std::mutex mu_;
  std::vector<CURL*> idle_;
};

}  // namespace detail

namespace {

const char* const kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// An error answer's body is kept up to this much (S3's are well under 1 KiB).
constexpr size_t kMaxErrorBody = 64 * 1024;
// Bodies move in big pieces: with libcurl's defaults (16 KiB down, 64 KiB up) a 50 MB layer
// costs thousands of recv/poll/write round trips and sink calls.
constexpr long kDownloadBufferSize = 512 * 1024;
constexpr long kUploadBufferSize = 2 * 1024 * 1024;  // libcurl's largest

struct Request {
  const char* method = "GET";
  std::string key;    // "" = the bucket itself
  std::string query;  // encoded and in SigV4's order already ("" for none)
  std::vector<std::string> headers;
  // The body: from memory (hashed for x-amz-content-sha256), or a file range (UNSIGNED-PAYLOAD).
  std::string_view body;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
  const S3Sink* sink = nullptr;  // a 2xx body goes here; otherwise into Response::body
  bool want_partial = false;     // a Range GET: a 200 would be the whole object
  bool sign_here = false;        // signed by s3_sigv4.h instead of libcurl (see there)
};

struct Response {
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names

  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) {
        return v;
      }
    }
    return {};
  }
};

struct Transfer {
  CURL* curl = nullptr;
  Request* req = nullptr;
  Response* res = nullptr;
  uint64_t sent = 0;
  std::optional<Error> sink_error;
  std::optional<Error> read_error;
};

std::once_flag curl_once;

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  std::string_view line(data, len);
  if (line.rfind("HTTP/", 0) == 0) {
    t->res->headers.clear();  // a new response (after 100 Continue)
    return len;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) {
    return len;
  }
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  t->res->headers.emplace_back(std::move(name), std::string(value));
  return len;
}

size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (t->req->sink != nullptr && code >= 200 && code < 300) {
    if (t->req->want_partial && code != 206) {
      t->sink_error = Error(Errc::Internal, "the S3 service ignored the Range header");
      return 0;
    }
    if (auto s = (*t->req->sink)(data, len); !s) {
      t->sink_error = s.error();
      return 0;  // anything but len aborts the transfer
    }
    return len;
  }
  if (t->res->body.size() < kMaxErrorBody ||
      (code >= 200 && code < 300 && t->res->body.size() < kMaxS3XmlBytes)) {
    t->res->body.append(data, len);
  }
  return len;
}

size_t on_read(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const Request& r = *t->req;
  uint64_t total = r.fd >= 0 ? r.length : r.body.size();
  size_t want = static_cast<size_t>(std::min<uint64_t>(size * n, total - t->sent));
  if (want == 0) {
    return 0;
  }
  if (r.fd < 0) {
    std::memcpy(buf, r.body.data() + t->sent, want);
    t->sent += want;
    return want;
  }
  while (true) {
    ssize_t got = ::pread(r.fd, buf, want, static_cast<off_t>(r.offset + t->sent));
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      t->read_error = Error(Errc::Internal, got < 0 ? std::string("read: ") + std::strerror(errno)
                                                    : std::string("file ended early"));
      return CURL_READFUNC_ABORT;
    }
    t->sent += static_cast<uint64_t>(got);
    return static_cast<size_t>(got);
  }
}

// libcurl rewinds a body when it must send the request again (a reused connection that had
// been closed).
int on_seek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->sent = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

Errc errc_for(const std::string& code, long status) {
  if (code == "NoSuchKey" || code == "NoSuchBucket" || code == "NoSuchUpload") {
    return Errc::NotFound;
  }
  if (code == "AccessDenied" || code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" ||
      code == "RequestTimeTooSkewed") {
    return Errc::PermissionDenied;
  }
  if (code == "BucketAlreadyExists") {
    return Errc::AlreadyExists;
  }
  if (code == "SlowDown" || code == "ServiceUnavailable" || code == "InternalError" ||
      code == "RequestTimeout") {
    return Errc::Unavailable;
  }
  if (code == "PreconditionFailed") {
    return Errc::FailedPrecondition;
  }
  if (status == 404) {
    return Errc::NotFound;
  }
  if (status == 401 || status == 403) {
    return Errc::PermissionDenied;
  }
  if (status == 409) {
    return Errc::Conflict;
  }
  if (status == 412) {
    return Errc::FailedPrecondition;
  }
  if (status >= 500 || status == 429) {
    return Errc::Unavailable;
  }
  if (status >= 400) {
    return Errc::InvalidArgument;
  }
  return Errc::Internal;
}

// An error the S3 service answered, or one reaching it: when Unavailable, marked as blob
// storage's, so that clients hear only that storage is away (common/result.h).
Error from_s3(Error e) {
  if (e.code() != Errc::Unavailable) {
    return e;
  }
  return std::move(e).with_origin(ErrorOrigin::BlobStorage);
}

// S3's <Error><Code/><Message/></Error> as an Error ("404 NoSuchKey: message").
Error s3_error(const std::string& what, long status, const std::string& body) {
  std::string code, message;
  if (auto doc = parse_xml(body); doc && doc->name == "Error") {
    code = doc->child_text("Code");
    message = doc->child_text("Message");
  }
  std::string text = what + ": " + std::to_string(status);
  if (!code.empty()) {
    text += " " + code;
  }
  if (!message.empty()) {
    text += ": " + message;
  }
  return Error(errc_for(code, status), text);
}

Errc errc_for_curl(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
      return Errc::Unavailable;
    default:
      return Errc::Internal;
  }
}

Result<Response> perform(detail::S3Connections& conns, const S3Options& o, const std::string& url,
                         Request& req) {
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::string what = std::string("s3 ") + req.method + " " + o.bucket +
                     (req.key.empty() ? "" : "/" + req.key) +
                     (req.query.empty() ? "" : "?" + req.query);
  CURL* h = conns.take();
  if (h == nullptr) {
    return Error(Errc::Internal, what + ": curl_easy_init failed");
  }
  Response res;
  Transfer t;
  t.curl = h;
  t.req = &req;
  t.res = &res;
  char errbuf[CURL_ERROR_SIZE] = {0};
  std::string full = req.query.empty() ? url : url + "?" + req.query;
  std::string sigv4 = "aws:amz:" + o.region + ":s3";
  curl_easy_setopt(h, CURLOPT_URL, full.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");  // never an environment's proxy
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o.stall_timeout.count()));
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);

  std::string method = req.method;
  bool has_body = req.fd >= 0 || !req.body.empty();
  std::string payload = req.fd >= 0 ? "UNSIGNED-PAYLOAD"
                        : has_body  ? Sha256::hex_of(req.body)
                                    : kEmptySha256;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, ("x-amz-content-sha256: " + payload).c_str());
  for (const auto& hd : req.headers) {
    headers = curl_slist_append(headers, hd.c_str());
  }
  if (req.sign_here) {
    // The Host and the path exactly as sent: the authority and the rest of the URL.
    size_t authority = url.find("://");
    authority = authority == std::string::npos ? 0 : authority + 3;
    size_t path_at = url.find('/', authority);
    std::string host = url.substr(
        authority, path_at == std::string::npos ? std::string::npos : path_at - authority);
    std::string path = path_at == std::string::npos ? "/" : url.substr(path_at);
    std::string stamp = detail::sigv4_date(static_cast<int64_t>(std::time(nullptr)));
    std::vector<std::pair<std::string, std::string>> signed_headers = {
        {"host", host}, {"x-amz-content-sha256", payload}, {"x-amz-date", stamp}};
    for (const auto& hd : req.headers) {
      auto colon = hd.find(':');
      std::string name = hd.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string value = colon == std::string::npos ? "" : hd.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      value.erase(value.find_last_not_of(' ') + 1);
      signed_headers.emplace_back(std::move(name), std::move(value));
    }
    std::string auth = detail::sigv4_authorization(o, method, path, req.query,
                                                   std::move(signed_headers), payload, stamp);
    headers = curl_slist_append(headers, ("Host: " + host).c_str());
    headers = curl_slist_append(headers, ("x-amz-date: " + stamp).c_str());
    headers = curl_slist_append(headers, ("Authorization: " + auth).c_str());
  } else {
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(h, CURLOPT_USERNAME, o.access_key_id.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, o.secret_access_key.c_str());
  }
  if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method == "PUT" || method == "POST") {
    uint64_t size = req.fd >= 0 ? req.length : req.body.size();
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
    if (req.fd >= 0) {
      curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, kUploadBufferSize);
    }
    if (method == "POST") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
    }
  } else if (method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method);
  }
  if (req.sink != nullptr) {
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, kDownloadBufferSize);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res.status);
  curl_slist_free_all(headers);
  conns.give(h);
  if (t.sink_error) {
    return std::move(*t.sink_error);
  }
  if (t.read_error) {
    return std::move(*t.read_error).with_context(what);
  }
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    return from_s3(Error(errc_for_curl(rc), what + ": " + detail));
  }
  if (res.status < 200 || res.status >= 300) {
    return from_s3(s3_error(what, res.status, res.body));
  }
  return res;
}

// An answer that is 200 and yet an <Error> (CopyObject, CompleteMultipartUpload: S3 sends the
// status before it knows the outcome).
Status check_late_error(const std::string& what, const Response& res) {
  if (res.body.find("<Error>") != std::string::npos) {
    auto e = s3_error(what, res.status, res.body);
    if (e.code() == Errc::Internal) {
      return from_s3(Error(Errc::Unavailable, e.message()));
    }
    return from_s3(std::move(e));
  }
  return ok();
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
    return s.substr(1, s.size() - 2);
  }
  return s;
}

int64_t to_int(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) {
    return -1;
  }
  return std::stoll(s);
}

}  // namespace

S3Client::S3Client(S3Options opts)
    : opts_(std::move(opts)), conns_(std::make_unique<detail::S3Connections>()) {
  while (!opts_.endpoint.empty() && opts_.endpoint.back() == '/') {
    opts_.endpoint.pop_back();
  }
}

S3Client::~S3Client() = default;

std::string S3Client::url_for(const std::string& key) const {
  std::string path = key.empty() ? std::string() : "/" + s3_uri_encode(key, true);
  if (opts_.path_style) {
    return opts_.endpoint + "/" + opts_.bucket + path;
  }
  auto scheme_end = opts_.endpoint.find("://");
  size_t at = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  return opts_.endpoint.substr(0, at) + opts_.bucket + "." + opts_.endpoint.substr(at) +
         (path.empty() ? "/" : path);
}

std::string S3Client::host() const {
  std::string url = url_for("");
  auto start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  auto end = url.find('/', start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

Status S3Client::create_bucket() {
  Request r;
  r.method = "PUT";
  auto res = perform(*conns_, opts_, url_for(""), r);
  if (!res && res.error().message().find("BucketAlreadyOwnedByYou") != std::string::npos) {
    return ok();
  }
  if (!res) {
    return std::move(res).error();
  }
  return ok();
}

Status S3Client::put_object(const std::string& key, std::string_view body) {
  Request r;
  r.method = "PUT";
  r.key = key;
  r.body = body;
  auto res = perform(*conns_, opts_, url_for(key), r);
  return res ? ok() : Status(std::move(res).error());
}

Status S3Client::put_object_file(const std::string& key, int fd, uint64_t offset, uint64_t length) {
  Request r;
  r.method = "PUT";
  r.key = key;
  r.fd = fd;
  r.offset = offset;
  r.length = length;
  auto res = perform(*conns_, opts_, url_for(key), r);
  return res ? ok() : Status(std::move(res).error());
}

Result<S3Object> S3Client::head_object(const std::string& key) {
  Request r;
  r.method = "HEAD";
  r.key = key;
  BERTH_ASSIGN_OR_RETURN(Response res, perform(*conns_, opts_, url_for(key), r));
  S3Object o;
  o.key = key;
  o.size = to_int(res.header("content-length"));
  o.etag = unquote(res.header("etag"));
  std::string modified = res.header("last-modified");
  o.mtime = modified.empty() ? 0 : static_cast<int64_t>(curl_getdate(modified.c_str(), nullptr));
  if (o.size < 0) {
    return Error(Errc::Internal, "s3 HEAD " + opts_.bucket + "/" + key + ": no Content-Length");
  }
  return o;
}

Status S3Client::get_object(const std::string& key, const S3Sink& sink,
                            std::optional<S3Range> range) {
  Request r;
  r.key = key;
  r.sink = &sink;
  if (range) {
    if (range->length == 0) {
      return Error(Errc::InvalidArgument, "s3 GET " + key + ": empty range");
    }
    r.headers.push_back("Range: bytes=" + std::to_string(range->offset) + "-" +
                        std::to_string(range->offset + range->length - 1));
    r.want_partial = true;
  }
  auto res = perform(*conns_, opts_, url_for(key), r);
  return res ? ok() : Status(std::move(res).error());
}

Status S3Client::delete_object(const std::string& key) {
  Request r;
  r.method = "DELETE";
  r.key = key;
  auto res = perform(*conns_, opts_, url_for(key), r);
  if (!res && res.error().code() != Errc::NotFound) {
    return std::move(res).error();
  }
  return ok();
}

Status S3Client::copy_object(const std::string& from, const std::string& to) {
  Request r;
  r.method = "PUT";
  r.key = to;
  r.headers.push_back("x-amz-copy-source: /" + opts_.bucket + "/" + s3_uri_encode(from, true));
  BERTH_ASSIGN_OR_RETURN(Response res, perform(*conns_, opts_, url_for(to), r));
  return check_late_error("s3 copy " + from + " to " + to, res);
}

Status S3Client::copy(const std::string& from, const std::string& to, uint64_t size) {
  if (size <= opts_.max_copy_size) {
    return copy_object(from, to);
  }
  uint64_t part_size =
      std::max<uint64_t>({opts_.copy_part_size, kS3MinPartSize, (size + 9999) / 10000});
  BERTH_ASSIGN_OR_RETURN(std::string upload_id, create_multipart_upload(to));
  std::vector<S3Part> parts;
  Status s = ok();
  for (uint64_t off = 0; off < size; off += part_size) {
    int number = static_cast<int>(parts.size() + 1);
    S3Range range{off, std::min(part_size, size - off)};
    auto etag = upload_part_copy(to, upload_id, number, from, range);
    if (!etag) {
      s = std::move(etag).error();
      break;
    }
    parts.push_back({number, std::move(*etag)});
  }
  if (s) {
    s = complete_multipart_upload(to, upload_id, parts);
  }
  if (!s) {
    // Best effort: one that cannot be aborted now is expire_partial()'s.
    (void)abort_multipart_upload(to, upload_id);
    return std::move(s).error().with_context("s3 multipart copy " + from + " to " + to);
  }
  return ok();
}

Result<std::string> S3Client::create_multipart_upload(const std::string& key) {
  Request r;
  r.method = "POST";
  r.key = key;
  r.query = "uploads=";  // libcurl 7.88 signs "uploads" without the '=' that S3 expects
  BERTH_ASSIGN_OR_RETURN(Response res, perform(*conns_, opts_, url_for(key), r));
  BERTH_ASSIGN_OR_RETURN(XmlNode doc, parse_xml(res.body));
  std::string id = doc.child_text("UploadId");
  if (id.empty()) {
    return Error(Errc::Internal, "s3 create multipart upload " + key + ": no UploadId");
  }
  return id;
}

Result<std::string> S3Client::upload_part(const std::string& key, const std::string& upload_id,
                                          int number, std::string_view body) {
  Request r;
  r.method = "PUT";
  r.key = key;
  r.query = "partNumber=" + std::to_string(number) + "&uploadId=" + s3_uri_encode(upload_id, false);
  r.body = body;
  BERTH_ASSIGN_OR_RETURN(Response res, perform(*conns_, opts_, url_for(key), r));
  return unquote(res.header("etag"));
}

Result<std::string> S3Client::upload_part_file(const std::string& key, const std::string& upload_id,
                                               int number, int fd, uint64_t offset,
                                               uint64_t length) {
  Request r;
  r.method = "PUT";
  r.key = key;
  r.query = "partNumber=" + std::to_string(number) + "&uploadId=" + s3_uri_encode(upload_id, false);
  r.fd = fd;
  r.offset = offset;
  r.length = length;
  BERTH_ASSIGN_OR_RETURN(Response res, perform(*conns_, opts_, url_for(key), r));
  return unquote(res.header("etag"));
}

Result<std::string> S3Client::upload_part_copy(const std::string& key, const std::string& upload_id,
                                               int number, const std::string& from, S3Range range) {
  std::string what = "s3 copy part " + std::to_string(number) + " of " + from + " to " + key;
  if (range.length == 0) {
    return Error(Errc::InvalidArgument, what + ": empty range");
  }
  Request r;
  r.method = "PUT";
  r.key = key;
  r.query = "partNumber=" + std::to_string(number) + "&uploadId=" + s3_uri_encode(upload_id, false);
  r.headers.push_back("x-amz-copy-source: /" + opts_.bucket + "/" + s3_uri_encode(from, true));
  r.headers.push_back("x-amz-copy-source-range: bytes=" + std::to_string(range.offset) + "-" +
                      std::to_string(range.offset + range.length - 1));
  r.sign_here = true;  // libcurl 7.88 signs this pair of headers wrong (s3_sigv4.h)
  BERTH_ASSIGN_OR_RETURN(Response res, perform(*conns_, opts_, url_for(key), r));
  BERTH_TRY(check_late_error(what, res));
  // The ETag is in the body: <CopyPartResult><ETag>"..."</ETag>...</CopyPartResult>.
  BERTH_ASSIGN_OR_RETURN(XmlNode doc, parse_xml(res.body));
  std::string etag = unquote(doc.child_text("ETag"));
  if (etag.empty()) {
    return Error(Errc::Internal, what + ": no ETag in the answer");
  }
  return etag;
}

Status S3Client::complete_multipart_upload(const std::string& key, const std::string& upload_id,
                                           const std::vector<S3Part>& parts) {
  std::string body = "<CompleteMultipartUpload>";
  for (const auto& p : parts) {
    body += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>\"" + p.etag +
            "\"</ETag></Part>";
  }
  body += "</CompleteMultipartUpload>";
  Request r;
  r.method = "POST";
  r.key = key;
  r.query = "uploadId=" + s3_uri_encode(upload_id, false);
  r.body = body;
  r.headers.push_back("Content-Type: application/xml");
  BERTH_ASSIGN_OR_RETURN(Response res, perform(*conns_, opts_, url_for(key), r));
  return check_late_error("s3 complete multipart upload " + key, res);
}

Status S3Client::abort_multipart_upload(const std::string& key, const std::string& upload_id) {
  Request r;
  r.method = "DELETE";
  r.key = key;
  r.query = "uploadId=" + s3_uri_encode(upload_id, false);
  auto res = perform(*conns_, opts_, url_for(key), r);
  return res ? ok() : Status(std::move(res).error());
}

Result<std::vector<S3Object>> S3Client::list_objects(const std::string& prefix, int page_size) {
  std::vector<S3Object> out;
  std::string token;
  while (true) {
    Request r;
    // Parameters in SigV4's byte order: libcurl 7.88 signs them as given.
    if (!token.empty()) {
      r.query = "continuation-token=" + s3_uri_encode(token, false) + "&";
    }
    r.query += "list-type=2&max-keys=" + std::to_string(page_size) +
               "&prefix=" + s3_uri_encode(prefix, false);
    BERTH_ASSIGN_OR_RETURN(Response res, perform(*conns_, opts_, url_for(""), r));
    BERTH_ASSIGN_OR_RETURN(XmlNode doc, parse_xml(res.body));
    for (const auto& c : doc.children) {
      if (c.name != "Contents") {
        continue;
      }
      S3Object o;
      o.key = c.child_text("Key");
      o.size = to_int(c.child_text("Size"));
      o.etag = unquote(c.child_text("ETag"));
      o.mtime = parse_iso8601(c.child_text("LastModified"));
      out.push_back(std::move(o));
    }
    std::string next = doc.child_text("NextContinuationToken");
    if (doc.child_text("IsTruncated") != "true" || next.empty() || next == token) {
      break;
    }
    token = next;
  }
  return out;
}

Result<std::vector<S3MultipartUpload>> S3Client::list_multipart_uploads(const std::string& prefix,
                                                                        int page_size) {
  std::vector<S3MultipartUpload> out;
  std::string key_marker, id_marker;
  while (true) {
    Request r;
    if (!key_marker.empty()) {
      r.query = "key-marker=" + s3_uri_encode(key_marker, false) + "&";
    }
    r.query +=
        "max-uploads=" + std::to_string(page_size) + "&prefix=" + s3_uri_encode(prefix, false);
    if (!id_marker.empty()) {
      r.query += "&upload-id-marker=" + s3_uri_encode(id_marker, false);
    }
    r.query += "&uploads=";
    BERTH_ASSIGN_OR_RETURN(Response res, perform(*conns_, opts_, url_for(""), r));
    BERTH_ASSIGN_OR_RETURN(XmlNode doc, parse_xml(res.body));
    for (const auto& c : doc.children) {
      if (c.name == "Upload") {
        out.push_back({c.child_text("Key"), c.child_text("UploadId"),
                       parse_iso8601(c.child_text("Initiated"))});
      }
    }
    std::string next_key = doc.child_text("NextKeyMarker");
    std::string next_id = doc.child_text("NextUploadIdMarker");
    if (doc.child_text("IsTruncated") != "true" ||
        (next_key == key_marker && next_id == id_marker)) {
      break;
    }
    key_marker = next_key;
    id_marker = next_id;
  }
  return out;
}

Result<int64_t> S3Client::last_part_time(const std::string& key, const std::string& upload_id,
                                         int page_size) {
  int64_t last = 0;
  std::string marker;
  while (true) {
    Request r;
    r.key = key;
    // Parameters in SigV4's byte order: libcurl 7.88 signs them as given.
    r.query = "max-parts=" + std::to_string(page_size);
    if (!marker.empty()) {
      r.query += "&part-number-marker=" + s3_uri_encode(marker, false);
    }
    r.query += "&uploadId=" + s3_uri_encode(upload_id, false);
    BERTH_ASSIGN_OR_RETURN(Response res, perform(*conns_, opts_, url_for(key), r));
    BERTH_ASSIGN_OR_RETURN(XmlNode doc, parse_xml(res.body));
    for (const auto& c : doc.children) {
      if (c.name == "Part") {
        last = std::max(last, parse_iso8601(c.child_text("LastModified")));
      }
    }
    std::string next = doc.child_text("NextPartNumberMarker");
    if (doc.child_text("IsTruncated") != "true" || next.empty() || next == marker) {
      break;
    }
    marker = next;
  }
  return last;
}

}  // namespace berth::storage
