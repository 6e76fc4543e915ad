// Lookup tables behind Tokenizer (internal to src/model): a hash map from piece
// bytes to id for the BPE merges, a trie of user-defined pieces for longest
// match, the set of character pairs that occur inside pieces (which splits the
// text into parts that BPE can process independently), and the id of each
// byte piece. Built once per vocabulary (tokenizer_index.cpp); immutable.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"

namespace kp::model {

// 64-bit hash of a short byte string, 8 bytes per step (pieces are mostly a
// few bytes; encoding hashes every candidate merge and every part of the text).
inline uint64_t piece_hash(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
  }
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 32;
  return h;
}

// Length of the UTF-8 character at the start of `s` (non-empty): 1 to 4, or 1
// for a byte that does not begin a well-formed sequence (such a byte is a
// character of its own, and falls back to its byte piece).
inline size_t utf8_char_len(std::string_view s) {
  const auto c = static_cast<uint8_t>(s[0]);
  size_t len = 1;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) len = 2;
  else if ((c & 0xF0) == 0xE0) len = 3;
  else if ((c & 0xF8) == 0xF0) len = 4;
  else return 1;  // a continuation byte or 0xF8..0xFF
  if (len > s.size()) return 1;
  for (size_t k = 1; k < len; ++k) {
    if ((static_cast<uint8_t>(s[k]) & 0xC0) != 0x80) return 1;
  }
  return len;
}

// A character (1 to 4 bytes, as cut by utf8_char_len) as a 32-bit value:
// its bytes, zero-padded. Distinct characters give distinct values (a
// multi-byte character's second byte is a non-zero continuation byte), and no
// character gives 0xFFFFFFFF.
inline uint32_t pack_char(std::string_view ch) {
  uint32_t v = 0;
  std::memcpy(&v, ch.data(), ch.size());
  return v;
}

// The pairs (a, b) of characters such that "ab" occurs inside some mergeable
// piece, keyed pack_char(a) << 32 | pack_char(b). When two neighbouring
// characters of a text are not such a pair, no merge can ever join them (every
// merge result is a piece), so BPE runs on each side independently; in
// SentencePiece vocabularies most words are cut off from their neighbours this way.
class CharPairSet {
 public:
  void insert(uint64_t key);
  bool contains(uint64_t key) const {
    for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i] == key) return true;
      if (slots_[i] == kEmpty) return false;
    }
  }
  // Inserts every pair of neighbouring characters of `piece`.
  void insert_pairs_of(std::string_view piece);

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // not a key: see pack_char
  static size_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  std::vector<uint64_t> slots_ = std::vector<uint64_t>(16, kEmpty);
  size_t mask_ = 15;
  size_t n_keys_ = 0;
};

// Open-addressing (linear probing) map: piece bytes -> id. Keys of up to 16
// bytes are stored in their slot and longer ones in an arena owned by the map,
// so nothing points into the Tokenizer.
class PieceMap {
 public:
  // Capacity: a power of two >= 2 * n_keys, so probes stay short.
  void reserve(size_t n_keys);
  // Inserts unless present; the first id inserted for a text wins.
  void insert(std::string_view key, int32_t id);
  // -1 when absent.
  int32_t find(std::string_view key) const {
    const uint64_t hash = piece_hash(key);
    const auto tag = static_cast<uint32_t>(hash >> 32);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == tag && s.len == key.size() && std::memcmp(key_of(s), key.data(), key.size()) == 0) {
        return s.id;
      }
    }
  }
  size_t size() const { return n_keys_; }

 private:
  // One slot is half a cache line and holds keys of up to kInline bytes (most
  // pieces) itself, so a probe usually touches one line: the slot index comes
  // from the hash's low bits, `tag` holds its high 32 bits, and the key bytes
  // are compared only when the tag matches.
  static constexpr size_t kInline = 16;
  struct alignas(32) Slot {
    uint32_t tag = 0;
    int32_t id = -1;      // -1: empty slot
    uint32_t len = 0;
    uint32_t offset = 0;  // into arena_ when len > kInline
    char bytes[kInline] = {};
  };
  static_assert(sizeof(Slot) == 32);
  const char* key_of(const Slot& s) const { return s.len <= kInline ? s.bytes : arena_.data() + s.offset; }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t n_keys_ = 0;
  std::string arena_;
};

// Byte trie of the user-defined pieces, for the longest match at a position.
// Children of the root are a 256-entry table (most positions stop there);
// deeper nodes keep their children sorted by byte (binary search).
class UserPieceTrie {
 public:
  UserPieceTrie() { root_.fill(-1); }
  void insert(std::string_view piece, int32_t id);  // a non-empty piece; first id wins
  // Longest user-defined piece that prefixes `text`: sets *len and returns its
  // id, or returns -1.
  int32_t longest_match(std::string_view text, size_t* len) const;
  bool empty() const { return nodes_.empty(); }

 private:
  struct Node {
    int32_t id = -1;  // piece ending at this node, -1 if none
    std::vector<std::pair<uint8_t, int32_t>> children;  // (byte, node), sorted by byte
  };
  int32_t child(int32_t node, uint8_t byte) const;
  std::array<int32_t, 256> root_;  // first byte -> node, -1 if none
  std::vector<Node> nodes_;
};

struct Tokenizer::Index {
  PieceMap mergeable;                // normal and user-defined pieces -> id
  CharPairSet joinable;              // character pairs inside mergeable pieces
  UserPieceTrie user_defined;        // matched whole before BPE
  std::array<int32_t, 256> byte_id;  // byte -> id of its <0xNN> piece, -1 if none
};

}  // namespace kp::model
