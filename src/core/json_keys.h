// Duplicate keys in JSON text. JSON parsers keep the last of two equal keys
// in an object, so a second "decode" or "entry" would silently replace the
// first; kpath refuses such documents instead, naming both places.
#pragma once

#include <string_view>

#include "core/result.h"

namespace kp {

// Checks that no object in `text` (well-formed JSON: call it after a parser
// accepted the text) has two equal keys (compared after unescaping). The
// error names the key's JSON location and both places: "<origin>:
// decode.steps[2].entry: key 'entry' appears twice in one object (line 12,
// column 40; first at line 12, column 5)".
Status check_json_unique_keys(std::string_view text, std::string_view origin);

}  // namespace kp
