// SPDX-License-Identifier: Apache-2.0
#include "storage/s3_xml.h"

#include <expat.h>

#include <cstdio>
#include <ctime>

namespace berth::storage {

namespace {

constexpr size_t kMaxDepth = 32;

struct Builder {
  XmlNode root;
  std::vector<XmlNode*> stack;  // open elements, innermost last
  bool seen_root = false;
  bool too_deep = false;
  bool doctype = false;
  XML_Parser parser = nullptr;
};

std::string local_name(const char* name) {
  std::string_view n(name);
  auto colon = n.rfind(':');
  return std::string(colon == std::string_view::npos ? n : n.substr(colon + 1));
}

void on_start(void* data, const XML_Char* name, const XML_Char** /*attrs*/) {
  auto* b = static_cast<Builder*>(data);
  if (b->stack.size() >= kMaxDepth) {
    b->too_deep = true;
    XML_StopParser(b->parser, XML_FALSE);
    return;
  }
  if (b->stack.empty()) {
    b->root.name = local_name(name);
    b->seen_root = true;
    b->stack.push_back(&b->root);
    return;
  }
  XmlNode* parent = b->stack.back();
  parent->children.push_back(XmlNode{local_name(name), {}, {}});
  b->stack.push_back(&parent->children.back());
}

void on_doctype(void* data, const XML_Char* /*name*/, const XML_Char* /*sysid*/,
                const XML_Char* /*pubid*/, int /*has_internal_subset*/) {
  auto* b = static_cast<Builder*>(data);
  b->doctype = true;
  XML_StopParser(b->parser, XML_FALSE);
}

void on_end(void* data, const XML_Char* /*name*/) {
  auto* b = static_cast<Builder*>(data);
  if (!b->stack.empty()) {
    b->stack.pop_back();
  }
}

void on_text(void* data, const XML_Char* s, int len) {
  auto* b = static_cast<Builder*>(data);
  if (!b->stack.empty() && len > 0) {
    b->stack.back()->text.append(s, static_cast<size_t>(len));
  }
}

}  // namespace

const XmlNode* XmlNode::child(std::string_view child_name) const {
  for (const auto& c : children) {
    if (c.name == child_name) {
      return &c;
    }
  }
  return nullptr;
}

std::string XmlNode::child_text(std::string_view child_name) const {
  const XmlNode* c = child(child_name);
  return c == nullptr ? std::string() : c->text;
}

Result<XmlNode> parse_xml(std::string_view body) {
  if (body.size() > kMaxS3XmlBytes) {
    return Error(Errc::InvalidArgument,
                 "XML answer of " + std::to_string(body.size()) + " bytes is too large");
  }
  Builder b;
  XML_Parser p = XML_ParserCreate(nullptr);
  if (p == nullptr) {
    return Error(Errc::Internal, "XML_ParserCreate failed");
  }
  b.parser = p;
  XML_SetUserData(p, &b);
  XML_SetElementHandler(p, on_start, on_end);
  XML_SetCharacterDataHandler(p, on_text);
  XML_SetStartDoctypeDeclHandler(p, on_doctype);
  auto status = XML_Parse(p, body.data(), static_cast<int>(body.size()), XML_TRUE);
  std::string why;
  if (b.doctype) {
    why = "a DOCTYPE (S3 sends none)";
  } else if (b.too_deep) {
    why = "nested deeper than " + std::to_string(kMaxDepth) + " elements";
  } else if (status != XML_STATUS_OK) {
    why = std::string(XML_ErrorString(XML_GetErrorCode(p))) + " at line " +
          std::to_string(XML_GetCurrentLineNumber(p));
  } else if (!b.seen_root) {
    why = "no root element";
  }
  XML_ParserFree(p);
  if (!why.empty()) {
    return Error(Errc::InvalidArgument, "malformed XML: " + why);
  }
  return std::move(b.root);
}

int64_t parse_iso8601(const std::string& s) {
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6) {
    return 0;
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<int64_t>(::timegm(&tm));
}

}  // namespace berth::storage
