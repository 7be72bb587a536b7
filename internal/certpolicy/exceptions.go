package certpolicy

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/openvex/go-vex/pkg/vex"
	"github.com/package-url/packageurl-go"
)

// exceptions is a compiled OpenVEX document.
type exceptions struct {
	stmts []statement // in document order
}

// statement is one VEX statement ready for matching.
type statement struct {
	vex.Statement
	// when orders statements: the statement's timestamp, else the
	// document's.
	when time.Time
	// exempts is true for not_affected with a justification or an impact
	// statement.
	exempts bool
}

// compileExceptions parses an OpenVEX 0.2.0 document with go-vex, checks
// it and prepares its statements for matching.
func compileExceptions(raw json.RawMessage) (*exceptions, error) {
	// go-vex's parser is lenient about unknown fields; a strict decode
	// into the same types first turns typos into errors.
	var strict vex.VEX
	if err := decodeStrict(raw, &strict); err != nil {
		return nil, fmt.Errorf("not an OpenVEX document: %w", err)
	}
	doc, err := vex.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not an OpenVEX document: %w", err)
	}
	if doc.Context != vex.ContextLocator() {
		return nil, fmt.Errorf("@context %q: want %q (OpenVEX %s)", doc.Context, vex.ContextLocator(), vex.SpecVersion)
	}
	switch {
	case doc.ID == "":
		return nil, errors.New("@id is required")
	case doc.Author == "":
		return nil, errors.New("author is required")
	case doc.Timestamp == nil || doc.Timestamp.IsZero():
		return nil, errors.New("timestamp is required")
	case doc.Version < 1:
		return nil, fmt.Errorf("version %d: want at least 1", doc.Version)
	case len(doc.Statements) > MaxStatements:
		return nil, fmt.Errorf("%d statements, more than %d", len(doc.Statements), MaxStatements)
	}
	exc := &exceptions{stmts: make([]statement, 0, len(doc.Statements))}
	for i := range doc.Statements {
		s, err := compileStatement(&doc.Statements[i], *doc.Timestamp)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		exc.stmts = append(exc.stmts, s)
	}
	return exc, nil
}

func compileStatement(st *vex.Statement, docTime time.Time) (statement, error) {
	v := st.Vulnerability
	if strings.TrimSpace(string(v.Name)) == "" {
		return statement{}, errors.New("vulnerability name is required")
	}
	if len(v.Aliases) > MaxAliases {
		return statement{}, fmt.Errorf("vulnerability %s: %d aliases, more than %d", v.Name, len(v.Aliases), MaxAliases)
	}
	for _, a := range v.Aliases {
		if strings.TrimSpace(string(a)) == "" {
			return statement{}, fmt.Errorf("vulnerability %s: empty alias", v.Name)
		}
	}
	if !st.Status.Valid() {
		return statement{}, fmt.Errorf("vulnerability %s: status %q: want one of %s", v.Name, st.Status, strings.Join(vex.Statuses(), ", "))
	}
	if st.Justification != "" && !st.Justification.Valid() {
		return statement{}, fmt.Errorf("vulnerability %s: justification %q: want one of %s",
			v.Name, st.Justification, strings.Join(vex.Justifications(), ", "))
	}
	if len(st.Products) == 0 {
		return statement{}, fmt.Errorf("vulnerability %s: no products", v.Name)
	}
	if len(st.Products) > MaxProducts {
		return statement{}, fmt.Errorf("vulnerability %s: %d products, more than %d", v.Name, len(st.Products), MaxProducts)
	}
	products := make([]vex.Product, len(st.Products))
	for i, p := range st.Products {
		c, err := normalizeComponent(p.Component)
		if err != nil {
			return statement{}, fmt.Errorf("vulnerability %s: product %d: %w", v.Name, i, err)
		}
		if len(p.Subcomponents) > MaxProducts {
			return statement{}, fmt.Errorf("vulnerability %s: product %d: %d subcomponents, more than %d",
				v.Name, i, len(p.Subcomponents), MaxProducts)
		}
		subs := make([]vex.Subcomponent, len(p.Subcomponents))
		for j, sc := range p.Subcomponents {
			sc2, err := normalizeComponent(sc.Component)
			if err != nil {
				return statement{}, fmt.Errorf("vulnerability %s: product %d: subcomponent %d: %w", v.Name, i, j, err)
			}
			subs[j] = vex.Subcomponent{Component: sc2}
		}
		products[i] = vex.Product{Component: c, Subcomponents: subs}
	}
	s := statement{Statement: *st, when: docTime}
	s.Products = products
	if st.Timestamp != nil && !st.Timestamp.IsZero() {
		s.when = *st.Timestamp
	}
	s.exempts = st.Status == vex.StatusNotAffected &&
		(st.Justification != "" || strings.TrimSpace(st.ImpactStatement) != "")
	return s, nil
}

// normalizeComponent checks that a product or subcomponent names
// something, that its package URLs parse and its SHA-256 hash is one, and
// lower-cases SHA-256 digests so matching ignores hex case.
func normalizeComponent(c vex.Component) (vex.Component, error) {
	if c.ID == "" && len(c.Identifiers) == 0 && len(c.Hashes) == 0 {
		return c, errors.New("names nothing: want @id, identifiers or hashes")
	}
	out := c
	if strings.HasPrefix(strings.ToLower(c.ID), "sha256:") {
		d := strings.ToLower(c.ID[len("sha256:"):])
		if !isSHA256Hex(d) {
			return c, fmt.Errorf("@id %q: not a sha256 digest", c.ID)
		}
		out.ID = "sha256:" + d
	}
	if strings.HasPrefix(c.ID, "pkg:") {
		if _, err := packageurl.FromString(c.ID); err != nil {
			return c, fmt.Errorf("@id %q: %w", c.ID, err)
		}
	}
	if len(c.Identifiers) > 0 {
		out.Identifiers = make(map[vex.IdentifierType]string, len(c.Identifiers))
		for t, id := range c.Identifiers {
			if t == vex.PURL {
				if _, err := packageurl.FromString(id); err != nil {
					return c, fmt.Errorf("purl identifier %q: %w", id, err)
				}
			}
			if strings.HasPrefix(strings.ToLower(id), "sha256:") {
				id = "sha256:" + strings.ToLower(id[len("sha256:"):])
			}
			out.Identifiers[t] = id
		}
	}
	if len(c.Hashes) > 0 {
		out.Hashes = make(map[vex.Algorithm]vex.Hash, len(c.Hashes))
		for a, h := range c.Hashes {
			if a == vex.SHA256 {
				h = vex.Hash(strings.ToLower(string(h)))
				if !isSHA256Hex(string(h)) {
					return c, fmt.Errorf("hash sha-256 %q: want 64 hex digits", h)
				}
			}
			out.Hashes[a] = h
		}
	}
	return out, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// effective returns the statement that decides a finding: the latest of
// the statements matching one of ids for the artifact (a lower-case hex
// SHA-256, or "" when unknown) or for one of the package URLs; nil when
// none matches.
func (e *exceptions) effective(artifact string, ids, purls []string) *statement {
	if e == nil {
		return nil
	}
	var best *statement
	for i := range e.stmts {
		s := &e.stmts[i]
		if !s.matchesVuln(ids) || !s.matchesProduct(artifact, purls) {
			continue
		}
		if best == nil || !s.when.Before(best.when) {
			best = s
		}
	}
	return best
}

func (s *statement) matchesVuln(ids []string) bool {
	for _, id := range ids {
		if id != "" && s.Vulnerability.Matches(id) {
			return true
		}
	}
	return false
}

func (s *statement) matchesProduct(artifact string, purls []string) bool {
	for i := range s.Products {
		p := &s.Products[i]
		if artifact != "" && namesArtifact(&p.Component, artifact) {
			if len(p.Subcomponents) == 0 {
				return true
			}
			for j := range p.Subcomponents {
				for _, u := range purls {
					if p.Subcomponents[j].Matches(u) {
						return true
					}
				}
			}
		}
		for _, u := range purls {
			if p.Component.Matches(u) {
				return true
			}
		}
	}
	return false
}

// namesArtifact reports whether a component names the artifact by its
// SHA-256 (already lower-cased on both sides).
func namesArtifact(c *vex.Component, artifact string) bool {
	return c.Matches("sha256:"+artifact) || string(c.Hashes[vex.SHA256]) == artifact
}

// normalizeArtifact accepts "<hex>" or "sha256:<hex>" and returns the
// lower-case hex, or "" when it is not a SHA-256 digest.
func normalizeArtifact(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "sha256:")
	if !isSHA256Hex(s) {
		return ""
	}
	return s
}

// findingPURLs returns the package URLs under which a VEX product may
// name a finding's package: for Go modules pkg:golang/<module> with the
// version written with and without its "v", and the module path as given
// and lower-cased; for Debian pkg:deb/debian/<package>. Other ecosystems
// have none.
func findingPURLs(ecosystem, pkg, version string) []string {
	if pkg == "" {
		return nil
	}
	eco := ecosystem
	if i := strings.IndexByte(eco, ':'); i >= 0 {
		eco = eco[:i] // "Debian:12"
	}
	var out []string
	add := func(typ, ns, name, ver string) {
		u := packageurl.NewPackageURL(typ, ns, name, ver, nil, "").ToString()
		for _, have := range out {
			if have == u {
				return
			}
		}
		out = append(out, u)
	}
	switch eco {
	case "Go":
		versions := []string{version}
		if version != "" && !strings.HasPrefix(version, "v") {
			versions = []string{"v" + version, version}
		}
		for _, path := range []string{pkg, strings.ToLower(pkg)} {
			ns, name := "", path
			if i := strings.LastIndexByte(path, '/'); i >= 0 {
				ns, name = path[:i], path[i+1:]
			}
			for _, v := range versions {
				add(packageurl.TypeGolang, ns, name, v)
			}
		}
	case "Debian":
		add(packageurl.TypeDebian, "debian", pkg, version)
	}
	return out
}

// canonicalJSON re-encodes a JSON value with object keys sorted, no
// insignificant whitespace, no HTML escaping and numbers in shortest form.
func canonicalJSON(raw json.RawMessage) (json.RawMessage, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	v, err := canonicalNumbers(v)
	if err != nil {
		return nil, err
	}
	return marshalNoEscape(v)
}

func canonicalNumbers(v any) (any, error) {
	switch t := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(t.String(), 10, 64); err == nil {
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
		f, err := strconv.ParseFloat(t.String(), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", t, err)
		}
		if f == float64(int64(f)) && f >= -1<<53 && f <= 1<<53 {
			return json.Number(strconv.FormatInt(int64(f), 10)), nil
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case map[string]any:
		for k, e := range t {
			c, err := canonicalNumbers(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
	case []any:
		for i, e := range t {
			c, err := canonicalNumbers(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
	}
	return v, nil
}
