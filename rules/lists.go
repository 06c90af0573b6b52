package rules

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

func init() {
	register(section{key: "lists", rank: rankLists,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) (err error) {
			pol.lists, err = p.lists(v)
			return err
		},
		steps: []step{{phase: phaseNames, at: 50, run: func(c *compiler) (err error) {
			c.listSrc, err = c.compileLists(c.names)
			return err
		}}}})
}

// The lists section: list files as security teams ship them (plain domain
// lists, hosts files, the DNS subset of adblock syntax), loaded into the
// name table the host rules use (hosts.go decides them). Real lists are
// messy, so a line that is not a usable entry is skipped and counted,
// never fatal; an unreadable file is fatal.

type listSpec struct {
	line   int
	path   string
	format string
	deny   bool
	opts   ruleOpts
}

func (p *parser) lists(n *yaml.Node) ([]listSpec, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "lists must be a list")
	}
	var out []listSpec
	for _, it := range n.Content {
		l := listSpec{line: it.Line, deny: true}
		err := p.eachKey(it, func(k, v *yaml.Node) error {
			var err error
			switch k.Value {
			case "path":
				if l.path, err = p.scalar(v); err == nil && l.path == "" {
					err = p.errf(v, "empty path")
				}
			case "format":
				l.format, err = p.oneOf(v, "plain", "hosts", "adblock")
			case "action":
				var s string
				s, err = p.oneOf(v, "allow", "deny")
				l.deny = s == "deny"
			case "id":
				err = p.errf(k, "lists take id-prefix, not id")
			default:
				var ok bool
				if ok, err = p.option(k, v, &l.opts); !ok && err == nil {
					err = p.errf(k, "unknown list key %q (want path, format, action, agents, ports, mode, important, id-prefix)", k.Value)
				}
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if l.path == "" {
			return nil, p.errf(it, "list without a path")
		}
		if l.format == "" {
			return nil, p.errf(it, "list %s without a format (plain, hosts or adblock)", l.path)
		}
		if l.opts.important && !l.deny {
			return nil, p.errf(it, "important applies to deny lists only")
		}
		out = append(out, l)
	}
	return out, nil
}

// compileLists loads every list into the name table being built; it
// returns each list's index into the engine's sources, so that finish's
// duplicate counts can be credited to the right list.
func (c *compiler) compileLists(b *nameBuilder) ([]int, error) {
	e := c.e
	listSrc := make([]int, len(c.pol.lists))
	e.stats.Lists = make([]ListStats, len(c.pol.lists))
	for i, l := range c.pol.lists {
		path := l.path
		if !filepath.IsAbs(path) {
			path = filepath.Join(c.dir, path)
		}
		id := l.opts.id
		if id == "" {
			id = l.path
		}
		e.sources = append(e.sources, source{
			list: true, file: l.path, ruleID: id, label: "list " + l.path,
			where:  fmt.Sprintf("%s:%d", c.pol.file, l.line), // where the list is named, for warnings
			agents: l.opts.agents, ports: l.opts.ports,
			report: c.pol.report && l.opts.mode != "enforce" || l.opts.mode == "report",
		})
		listSrc[i] = len(e.sources) - 1
		e.stats.Lists[i] = ListStats{Path: l.path, Format: l.format}
		if err := loadList(b, path, l, listSrc[i], &e.stats.Lists[i]); err != nil {
			return nil, err
		}
		e.files = append(e.files, path)
	}
	return listSrc, nil
}

const (
	maxLineLen  = 4 << 10
	maxListSize = 1 << 30
)

// ListStats describes one loaded list.
type ListStats struct {
	Path       string // as written in the policy
	Format     string
	Entries    int // entries kept
	Skipped    int // lines that were neither entries nor comments
	Duplicates int // entries repeated in the same list
}

// listLoader feeds one list into the builder.
type listLoader struct {
	b     *nameBuilder
	src   int
	deny  bool
	imp   bool
	stats *ListStats
}

func loadList(b *nameBuilder, file string, spec listSpec, src int, st *ListStats) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("load list %s (policy line %d): %w", spec.path, spec.line, err)
	}
	defer f.Close()
	data, err := readAll(f, maxListSize)
	if err != nil {
		return fmt.Errorf("load list %s: %w", spec.path, err)
	}
	if len(data) > maxListSize {
		return fmt.Errorf("load list %s: larger than %d bytes", spec.path, maxListSize)
	}
	b.reserve(bytes.Count(data, []byte{'\n'})+1, len(data))
	l := &listLoader{b: b, src: src, deny: spec.deny, imp: spec.opts.important, stats: st}
	var parse func([]byte, int) error
	switch spec.format {
	case "plain":
		parse = l.plain
	case "hosts":
		parse = l.hosts
	case "adblock":
		parse = l.adblock
	default:
		return fmt.Errorf("load list %s: unknown format %q", spec.path, spec.format)
	}
	for lineNo := 1; len(data) > 0; lineNo++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) > maxLineLen {
			st.Skipped++
			continue
		}
		if err := parse(bytes.TrimSpace(line), lineNo); err != nil {
			return fmt.Errorf("load list %s:%d: %w", spec.path, lineNo, err)
		}
	}
	return nil
}

// readAll reads f whole, sized from Stat so a big list is read into one
// buffer instead of a chain of doublings.
func readAll(f *os.File, limit int64) ([]byte, error) {
	size := int64(512)
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		size = min(st.Size(), limit) + 1 + bytes.MinRead
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(io.LimitReader(f, limit+1))
	return buf.Bytes(), err
}

// entry canonicalises name and stores it; an invalid name is skipped.
func (l *listLoader) entry(name []byte, kind uint8, deny, important bool, line int) error {
	canon, ok := canonicalEntry(name)
	if !ok {
		l.stats.Skipped++
		return nil
	}
	flags := kind
	if deny {
		flags |= flagDeny
		if important || l.imp {
			flags |= flagImportant
		}
	}
	l.stats.Entries++
	return l.b.add(canon, flags, line, l.src)
}

// canonicalEntry returns the canonical form of a list name. The common case
// (already lower-case ASCII, valid) is recognised without allocating; it is
// exactly the set of inputs addr.CanonicalName returns unchanged. Anything
// else goes through addr, so list entries are canonical like every host.
func canonicalEntry(b []byte) ([]byte, bool) {
	if addr.IsCanonicalName(b) {
		return b, true
	}
	s, err := addr.CanonicalName(string(b))
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

// splitName turns "*.x" or ".x" in a plain list into its kind; a bare name
// covers the domain and its subdomains.
func splitName(b []byte) ([]byte, uint8) {
	switch {
	case bytes.HasPrefix(b, []byte("*.")):
		return b[2:], kindSub
	case bytes.HasPrefix(b, []byte(".")):
		return b[1:], kindTree
	}
	return b, kindTree
}

func (l *listLoader) plain(line []byte, n int) error {
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		line = bytes.TrimSpace(line[:i])
	}
	if len(line) == 0 {
		return nil
	}
	if bytes.ContainsAny(line, " \t") {
		l.stats.Skipped++
		return nil
	}
	name, kind := splitName(line)
	return l.entry(name, kind, l.deny, false, n)
}

// hostsIgnored are the names every hosts file maps to itself.
var hostsIgnored = map[string]bool{
	"localhost": true, "localhost.localdomain": true, "broadcasthost": true,
	"local": true, "0.0.0.0": true, "ip6-localhost": true, "ip6-loopback": true,
}

func (l *listLoader) hosts(line []byte, n int) error {
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	fields := bytes.Fields(line)
	if len(fields) == 0 {
		return nil
	}
	if _, err := netip.ParseAddr(string(fields[0])); err != nil || len(fields) < 2 {
		l.stats.Skipped++
		return nil
	}
	for _, f := range fields[1:] {
		if hostsIgnored[string(f)] {
			continue
		}
		if err := l.entry(f, kindTree, l.deny, false, n); err != nil {
			return err
		}
	}
	return nil
}

// adblock reads the DNS-level subset: ||name^ blocks, @@||name^ exceptions,
// the $important modifier. Anything that needs a URL, a page or another
// modifier to mean what its author intended is skipped and counted: a
// partial reading of such a rule could block or allow the wrong thing.
func (l *listLoader) adblock(line []byte, n int) error {
	switch {
	case len(line) == 0, line[0] == '!', line[0] == '[':
		return nil
	case line[0] == '#' && !isCosmetic(line):
		return nil
	}
	exception := bytes.HasPrefix(line, []byte("@@"))
	if exception {
		line = line[2:]
	}
	if !bytes.HasPrefix(line, []byte("||")) {
		l.stats.Skipped++
		return nil
	}
	line = line[2:]
	var mods []byte
	if i := bytes.IndexByte(line, '$'); i >= 0 {
		line, mods = line[:i], line[i+1:]
	}
	if i := bytes.IndexByte(line, '^'); i >= 0 {
		if rest := line[i+1:]; len(rest) > 0 && !bytes.Equal(rest, []byte("|")) {
			l.stats.Skipped++ // a path or a pattern after the separator
			return nil
		}
		line = line[:i]
	}
	important := false
	if mods != nil {
		for _, m := range bytes.Split(mods, []byte(",")) {
			if !bytes.Equal(m, []byte("important")) {
				l.stats.Skipped++
				return nil
			}
			important = true
		}
	}
	if exception {
		// An exception never carries important: an important deny beats
		// every allow, and the stricter reading is the safe one.
		return l.entry(line, kindTree, false, false, n)
	}
	return l.entry(line, kindTree, l.deny, important, n)
}

func isCosmetic(line []byte) bool {
	for _, p := range []string{"##", "#@#", "#?#", "#$#", "#%#"} {
		if bytes.HasPrefix(line, []byte(p)) {
			return true
		}
	}
	return false
}
