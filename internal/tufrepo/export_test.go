package tufrepo

import "encoding/json"

type jsonRaw = json.RawMessage
