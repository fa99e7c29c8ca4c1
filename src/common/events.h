// SPDX-License-Identifier: Apache-2.0
// In-process event bus. Publishers never know who listens; subscribers run synchronously on
// the publisher's thread and must be quick (post real work elsewhere).
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace berth {

/// A manifest was stored. tag is empty for a push by digest.
struct ImagePushed {
  std::string repository;
  std::string tag;
  std::string digest;
  std::string media_type;
};

class EventBus {
 public:
  using ImagePushedFn = std::function<void(const ImagePushed&)>;

  void subscribe(ImagePushedFn fn) {
    std::lock_guard lock(mu_);
    image_pushed_.push_back(std::move(fn));
  }
  void publish(const ImagePushed& e) {
    std::vector<ImagePushedFn> subs;
    {
      std::lock_guard lock(mu_);
      subs = image_pushed_;
    }
    for (auto& fn : subs) {
      fn(e);
    }
  }

 private:
  std::mutex mu_;
  std::vector<ImagePushedFn> image_pushed_;
};

}  // namespace berth
