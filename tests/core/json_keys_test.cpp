// Duplicate JSON keys are found at any depth, through escapes, with both
// places; equal keys of different objects are not duplicates.
#include <gtest/gtest.h>

#include "core/json_keys.h"

namespace kp {
namespace {

std::string error_of(std::string_view text) {
  Status s = check_json_unique_keys(text, "f.json");
  return s.ok() ? std::string() : s.error().message;
}

TEST(JsonKeys, DistinctKeysPass) {
  EXPECT_EQ(error_of(R"({"a": 1, "b": {"a": 2, "c": [{"a": 3}, {"a": 4}]}, "c": "a"})"), "");
  EXPECT_EQ(error_of(R"([{"x": 1}, {"x": 2}])"), "");
  EXPECT_EQ(error_of(R"("not an object")"), "");
  EXPECT_EQ(error_of(R"({"a\"b": 1, "a": 2, "a\\b": 3})"), "");
}

TEST(JsonKeys, TopLevelDuplicateNamesBothPlaces) {
  EXPECT_EQ(error_of("{\n  \"decode\": {},\n  \"id\": \"x\",\n  \"decode\": {\"steps\": []}\n}"),
            "f.json: decode: key 'decode' appears twice in one object (line 4, column 3; first at line 2, column 3)");
}

TEST(JsonKeys, NestedDuplicatesNameTheirLocation) {
  EXPECT_EQ(error_of(R"({"decode": {"steps": [{"op": "a"}, {"op": "b", "entry": "x", "entry": "y"}]}})"),
            "f.json: decode.steps[1].entry: key 'entry' appears twice in one object (line 1, column 62; first at "
            "line 1, column 48)");
  EXPECT_EQ(error_of(R"([[1], [2, {"k": 1, "k": 2}]])"),
            "f.json: [1][1].k: key 'k' appears twice in one object (line 1, column 20; first at line 1, column 12)");
}

TEST(JsonKeys, EscapedSpellingsOfOneKeyAreTheSameKey) {
  const std::string e = error_of(R"({"entry": 1, "\u0065ntry": 2})");
  EXPECT_NE(e.find("key 'entry' appears twice"), std::string::npos) << e;
  const std::string s = error_of(R"({"\ud83d\ude00": 1, "😀": 2})");
  EXPECT_NE(s.find("appears twice"), std::string::npos) << s;
  const std::string slash = error_of(R"({"a/b": 1, "a\/b": 2})");
  EXPECT_NE(slash.find("key 'a/b' appears twice"), std::string::npos) << slash;
}

TEST(JsonKeys, StringsThatLookLikeStructureAreSkipped) {
  EXPECT_EQ(error_of(R"({"a": "{\"a\": 1, \"a\": 2}", "b": "[,]"})"), "");
}

}  // namespace
}  // namespace kp
