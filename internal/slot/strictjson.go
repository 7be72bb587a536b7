package slot

import "github.com/ztota/ztota/internal/strictjson"

// maxJSONDepth bounds nesting in slot state files.
const maxJSONDepth = 16

// decodeStrict decodes exactly one JSON value from data into v, refusing
// invalid UTF-8, duplicate object keys, unknown fields, excessive nesting
// and trailing data.
func decodeStrict(data []byte, v any) error { return strictjson.DecodeUnique(data, v, maxJSONDepth) }
