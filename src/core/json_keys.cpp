#include "core/json_keys.h"

#include <fmt/format.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kp {
namespace {

struct Position {
  int line = 1;
  int column = 1;
};

struct Frame {
  bool object = false;
  std::string path;                          // "" for the top level
  std::map<std::string, Position> keys;      // objects: the keys seen so far
  bool expect_key = false;                   // objects: the next string is a key
  std::string last_key;                      // objects: the key of the value being read
  int64_t index = 0;                         // arrays: the element being read
};

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Scanner {
 public:
  Scanner(std::string_view text, std::string_view origin) : s_(text), origin_(origin) {}

  Status run() {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '"') {
        const Position at = pos_;
        std::string str = read_string();
        if (!stack_.empty() && stack_.back().object && stack_.back().expect_key) {
          Frame& f = stack_.back();
          auto [it, fresh] = f.keys.emplace(str, at);
          if (!fresh) {
            return make_error("{}: {}: key '{}' appears twice in one object (line {}, column {}; first at line {}, "
                              "column {})",
                              origin_, f.path.empty() ? str : f.path + "." + str, str, at.line, at.column,
                              it->second.line, it->second.column);
          }
          f.last_key = std::move(str);
          f.expect_key = false;
        }
        continue;
      }
      if (c == '{' || c == '[') {
        Frame f;
        f.object = c == '{';
        f.expect_key = f.object;
        f.path = child_path();
        stack_.push_back(std::move(f));
      } else if (c == '}' || c == ']') {
        if (!stack_.empty()) stack_.pop_back();
      } else if (c == ',' && !stack_.empty()) {
        Frame& f = stack_.back();
        if (f.object) {
          f.expect_key = true;
        } else {
          ++f.index;
        }
      }
      advance();
    }
    return {};
  }

 private:
  std::string child_path() const {
    if (stack_.empty()) return "";
    const Frame& p = stack_.back();
    if (p.object) return p.path.empty() ? p.last_key : p.path + "." + p.last_key;
    return fmt::format("{}[{}]", p.path, p.index);
  }

  void advance() {
    if (s_[i_] == '\n') {
      ++pos_.line;
      pos_.column = 1;
    } else if ((static_cast<unsigned char>(s_[i_]) & 0xC0) != 0x80) {
      ++pos_.column;  // columns count characters, not UTF-8 continuation bytes
    }
    ++i_;
  }

  uint32_t hex4() {
    uint32_t v = 0;
    for (int k = 0; k < 4 && i_ < s_.size(); ++k) {
      const char h = s_[i_];
      v = v * 16 + static_cast<uint32_t>(h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0');
      advance();
    }
    return v;
  }

  // The string starting at the opening quote, unescaped; leaves i_ after the closing quote.
  std::string read_string() {
    std::string out;
    advance();
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] != '\\') {
        out += s_[i_];
        advance();
        continue;
      }
      advance();
      if (i_ >= s_.size()) break;
      const char e = s_[i_];
      advance();
      switch (e) {
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
            advance();
            advance();
            const uint32_t low = hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(cp, out);
          break;
        }
        default: out += e; break;  // \" \\ \/
      }
    }
    if (i_ < s_.size()) advance();
    return out;
  }

  std::string_view s_;
  std::string_view origin_;
  size_t i_ = 0;
  Position pos_;
  std::vector<Frame> stack_;
};

}  // namespace

Status check_json_unique_keys(std::string_view text, std::string_view origin) { return Scanner(text, origin).run(); }

}  // namespace kp
