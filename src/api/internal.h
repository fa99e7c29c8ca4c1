// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the API's handler files (private to src/api).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/async.h"
#include "common/json.h"
#include "common/result.h"
#include "http/http.h"

namespace berth::deploy {
struct ServiceView;
}  // namespace berth::deploy
namespace berth::iam {
class Service;
}  // namespace berth::iam
namespace berth::store {
struct DeploymentRecord;
}  // namespace berth::store

namespace berth::api {

/// SERVICE and DEPLOYMENT as the API shows them (services.cc).
Json service_json(const deploy::ServiceView& v);
Json deployment_json(const store::DeploymentRecord& d);

/// A JSON reply, and the {"error":{"code","message"}} reply for an error.
http::Response json_response(unsigned status, const Json& body);
http::Response error_response(const Error& e);
/// Sends error_response. Not a coroutine, and it takes a code and a string rather than an
/// Error: GCC 12 mis-copies aggregates and temporaries inside co_await expressions.
awaitable<void> reply_error(http::Exchange& ex, Errc code, std::string message);

/// What a handler job needs from a request, copied out of the Exchange so the job can run on
/// the blocking pool while the connection's coroutine waits.
struct ApiCall {
  http::RequestContext ctx;
  bhttp::verb method = bhttp::verb::get;
  std::string method_string;
  std::string rest;                          // the path after /api/v1/
  std::string body;                          // POST and PATCH only (at most max_body)
  std::map<std::string, std::string> query;  // the parameters asked for in read_call
  std::string q(const std::string& k, const std::string& dflt = "") const {
    auto it = query.find(k);
    return it == query.end() ? dflt : it->second;
  }
};

/// The base of the REST handlers (one per resource family, run on the blocking pool):
/// serve() answers with dispatch()'s response, or with the JSON error it failed with;
/// allow() asks IAM whether the caller may do `action` on `resource` (and audits it).
class RestHandler {
 public:
  explicit RestHandler(iam::Service& iam) : iam_(iam) {}
  virtual ~RestHandler() = default;
  RestHandler(const RestHandler&) = delete;
  RestHandler& operator=(const RestHandler&) = delete;

  http::Response serve(const ApiCall& call);

 protected:
  virtual Result<http::Response> dispatch(const ApiCall& call) = 0;
  Status allow(const ApiCall& call, const std::string& action, const std::string& resource);

  iam::Service& iam_;
};

/// The largest request body a REST call reads unless its handler says otherwise.
inline constexpr size_t kMaxRestBody = 256 * 1024;

/// Copies the request into an ApiCall: context, method, `rest`, the query parameters named in
/// `params`, and the body of a POST or PATCH. An error when the body cannot be read.
awaitable<Result<std::shared_ptr<ApiCall>>> read_call(http::Exchange& ex, std::string rest,
                                                      std::vector<const char*> params,
                                                      size_t max_body = kMaxRestBody);

/// The REST handler files' one request path: reads the request (read_call), runs `handle` on
/// the blocking pool (authorize, call the subsystem, build the response) and sends what it
/// returns, or the read's error.
awaitable<void> serve_call(http::Exchange& ex, std::string rest, std::vector<const char*> params,
                           size_t max_body, BlockingPool& pool,
                           std::function<http::Response(const ApiCall&)> handle);

/// NotFound "no API endpoint METHOD /api/v1/REST": what every REST handler answers for a path
/// or method it does not serve.
Error no_endpoint(const ApiCall& call);

/// True for repositories/NAME/lifecycle and repositories/NAME/lifecycle/preview (lifecycle.cc).
bool is_lifecycle_path(const std::string& rest);

/// An optional list-of-strings field of a request body: nullopt when absent, InvalidArgument
/// naming the key when it is not a list of strings.
Result<std::optional<std::vector<std::string>>> string_list_field(const Json& body,
                                                                  const char* key);

/// A request body that must be a JSON object ("" = {}). InvalidArgument otherwise.
Result<Json> parse_object_body(const std::string& body);

/// Splits "a/b/c" into its segments.
std::vector<std::string> segments(const std::string& path);

}  // namespace berth::api

namespace berth::api {

/// What one poll of a live view (a Server-Sent Events stream) found.
struct SsePoll {
  std::string events;          // framed with sse_event(); "" = nothing new
  bool done = false;           // the stream ends after these events
  std::optional<Error> error;  // first poll only: answered as the JSON error instead
};

/// How many Server-Sent Events streams may be open: per principal and in all. Each holds a
/// connection and runs a job on a pool every few hundred milliseconds.
struct SseLimits {
  size_t per_principal = 32;
  size_t total = 1024;
  std::mutex mu;
  std::map<std::string, size_t> open;
  size_t open_total = 0;
};

/// One SSE event: "event: NAME\ndata: DATA\n\n" (data is one line of JSON).
std::string sse_event(std::string_view name, const std::string& data);

/// Serves a Server-Sent Events stream (text/event-stream). The first poll runs before the
/// head is sent, so it can authorize and refuse with a plain JSON error; after that each poll
/// runs on the pool every `interval` and what it returns is sent at once. A comment line every
/// 15 s keeps proxies from closing a quiet stream. Ends when a poll says done, the client goes,
/// or berthd stops (`stopping`).
/// Past a limit the answer is 429 with Retry-After, naming it.
awaitable<void> serve_sse(http::Exchange& ex, BlockingPool& pool, std::function<SsePoll()> poll,
                          std::chrono::milliseconds interval,
                          std::shared_ptr<std::atomic<bool>> stopping,
                          std::shared_ptr<SseLimits> limits);

/// True when the client asked for Server-Sent Events (Accept: text/event-stream).
bool wants_sse(http::Exchange& ex);

}  // namespace berth::api
