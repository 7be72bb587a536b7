package agent

// Several modules per device (config "modules"): each module has its own
// A/B slots, release counter floor, refused set, announced assignment,
// mitigation mode, process, log, data directory and health output, under
// DATA_DIR/modules/<name>/; its persisted state is state.json's
// "modules"/<name>. A device running one module (config "module") keeps
// the original layout: DATA_DIR/slots, module.log, module-data,
// health.out, download/ and the top-level fields of state.json.
//
// Every module is installed, committed, rolled back, health-checked,
// degraded or switched to its backup on its own: one module's failure or
// revocation never stops or restarts another.

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ztota/ztota/internal/slot"
)

// module is one supervised module.
type module struct {
	cfg    *Module
	legacy bool   // the single "module" of the configuration: original layout
	dir    string // DATA_DIR (legacy) or DATA_DIR/modules/<name>
	slots  slot.Slots

	procMu  sync.Mutex // guards proc for readers on other goroutines
	proc    *process
	procDir string
	// stale: the running process was started degraded by the stale list
	// policy.
	stale bool

	lastErr string
	// A run of transient failures of one target: failed attempts, failed
	// install runs, and when to try again (see transient).
	failSHA  string
	fails    int
	failRuns int
	retryAt  time.Time
	// activeBad: the committed slot failed verification at boot; the
	// assigned release is installed again into the other slot.
	activeBad bool
	// revokedSeen: the artifact and list version last handled as revoked.
	revokedSeen string
	// The designated backup could not be used for a passing reason (the
	// server unreachable for its certificate or list, a failed download):
	// the module runs degraded meanwhile, and the switch is tried again
	// at backupRetryAt (backupTries so far) while it stays degraded.
	backupRetryAt time.Time
	backupTries   int
}

func (m *module) name() string { return m.cfg.Name }

func (m *module) slotsDir() string    { return filepath.Join(m.dir, "slots") }
func (m *module) logPath() string     { return filepath.Join(m.dir, "module.log") }
func (m *module) dataDir() string     { return filepath.Join(m.dir, "module-data") }
func (m *module) healthOut() string   { return filepath.Join(m.dir, "health.out") }
func (m *module) downloadDir() string { return filepath.Join(m.dir, "download") }

// openModules prepares the configured modules: directories and slots.
func (a *Agent) openModules(ctx context.Context) error {
	list := a.cfg.ModuleList()
	a.byName = map[string]*module{}
	for _, mc := range list {
		m := &module{cfg: mc, legacy: len(a.cfg.Modules) == 0, dir: a.cfg.DataDir}
		if !m.legacy {
			m.dir = filepath.Join(a.cfg.DataDir, "modules", mc.Name)
			a.mu.Lock()
			if a.st.Modules == nil {
				a.st.Modules = map[string]*modState{}
			}
			if a.st.Modules[mc.Name] == nil {
				a.st.Modules[mc.Name] = &modState{Refused: map[string]refusal{}}
			}
			a.mu.Unlock()
		}
		for _, d := range []string{m.dir, m.slotsDir(), m.downloadDir()} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return err
			}
		}
		var err error
		if m.slots, err = slot.OpenDir(ctx, m.slotsDir(), a.cfg.MaxBoots); err != nil {
			return err
		}
		a.mods = append(a.mods, m)
		a.byName[mc.Name] = m
	}
	return nil
}

// ms is m's persisted state; the caller holds a.mu.
func (a *Agent) ms(m *module) *modState {
	if m.legacy {
		return &a.st.modState
	}
	s := a.st.Modules[m.name()]
	if s == nil {
		s = &modState{Refused: map[string]refusal{}}
		a.st.Modules[m.name()] = s
	}
	return s
}

// module returns the module named name ("": the first one).
func (a *Agent) module(name string) *module {
	if name == "" {
		return a.mods[0]
	}
	return a.byName[name]
}

// setProc records m's running process and signals the run loop when it
// exits.
func (a *Agent) setProc(m *module, p *process, dir string) {
	m.procMu.Lock()
	m.proc, m.procDir = p, dir
	m.procMu.Unlock()
	if p != nil {
		go func() {
			<-p.exited()
			select {
			case a.exitCh <- struct{}{}:
			default:
			}
		}()
	}
}

// exitedModules returns the modules whose current process exited.
func (a *Agent) exitedModules() []*module {
	var out []*module
	for _, m := range a.mods {
		m.procMu.Lock()
		p := m.proc
		m.procMu.Unlock()
		if p == nil {
			continue
		}
		select {
		case <-p.exited():
			out = append(out, m)
		default:
		}
	}
	return out
}

// stopModule stops m's process.
func (a *Agent) stopModule(m *module) {
	m.procMu.Lock()
	p := m.proc
	m.procMu.Unlock()
	p.stop(5 * time.Second)
	a.setProc(m, nil, "")
}

// Modules names the supervised modules, in configuration order.
func (a *Agent) Modules() []string {
	out := make([]string, len(a.mods))
	for i, m := range a.mods {
		out[i] = m.name()
	}
	return out
}
