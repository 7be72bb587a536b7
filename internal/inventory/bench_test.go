package inventory

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"testing"
	"time"
)

// BenchmarkFromReaderTarGz inventories a tar.gz bundle (the Go test
// program, a dpkg database and 200 small files). The "ratio" metric is
// the time per inventory over the time to merely decompress and walk the
// same archive, measured in the same run: the cost of reading build
// information and dpkg stanzas on top of the unavoidable reading.
func BenchmarkFromReaderTarGz(b *testing.B) {
	es := bundleEntries(b)
	for i := range 200 {
		es = append(es, entry{name: "usr/share/doc/f" + string(rune('a'+i%26)) + string(rune('a'+i/26)), body: bytes.Repeat([]byte("documentation line\n"), 50)})
	}
	data := makeTar(b, true, es...)
	walk := func() {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			if _, err := tr.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, tr); err != nil {
				b.Fatal(err)
			}
		}
	}
	const refRuns = 5
	start := time.Now()
	for range refRuns {
		walk()
	}
	ref := time.Since(start) / refRuns

	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := inventoryOf(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(ref), "ratio")
	b.ReportMetric(float64(ref.Microseconds()), "ref-µs/op")
}

// BenchmarkParseSBOM parses the CycloneDX fixture with 2,000 extra
// components; "ratio" is its time over a plain encoding/json decode of
// the same document into an empty interface, measured in the same run.
func BenchmarkParseSBOM(b *testing.B) {
	doc := readFile(b, "testdata/cyclonedx.json")
	var extra bytes.Buffer
	for i := range 2000 {
		if i > 0 {
			extra.WriteByte(',')
		}
		extra.WriteString(`{"type":"library","name":"example.com/m","version":"v1.0.0","purl":"pkg:golang/example.com/m@v1.0.`)
		extra.WriteString(string(rune('0' + i%10)))
		extra.WriteString(`","properties":[{"name":"a","value":"b"}]}`)
	}
	doc = bytes.Replace(doc, []byte(`"components": [`), append(append([]byte(`"components": [`), extra.Bytes()...), ','), 1)
	ref := timeJSONDecode(b, doc)
	b.SetBytes(int64(len(doc)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := ParseSBOM(doc, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(ref), "ratio")
}

func timeJSONDecode(b *testing.B, doc []byte) time.Duration {
	const runs = 10
	start := time.Now()
	for range runs {
		var v any
		if err := jsonUnmarshal(doc, &v); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / runs
}

var jsonUnmarshal = json.Unmarshal
