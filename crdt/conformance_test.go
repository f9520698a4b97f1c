package crdt

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var casesDir = flag.String("cases", "testdata/conformance", "folder of conformance cases (*.json) for TestConformance")

// TestConformance runs every scenario in the -cases folder, one subtest per
// file. The format is described with the shared conformance cases: replicas
// make edits, exchange the updates they hold, restart and check their
// state.
func TestConformance(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(*casesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no *.json cases in %s; pass a folder with -cases", *casesDir)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := parseScenario(data)
			if err != nil {
				t.Fatalf("parse %s: %v", file, err)
			}
			runScenario(t, sc)
		})
	}
}

// scenario is one parsed case file.
type scenario struct {
	Name     string
	Replicas []string
	Steps    []step
}

type stepKind int

const (
	stepEdit stepKind = iota
	stepSend
	stepSync
	stepRestart
	stepCheck
)

// step is one parsed step; which fields are set depends on kind.
type step struct {
	kind stepKind

	// Edits.
	at        string
	container string // "text", "list", "map" or "counter"
	path      []any  // root name, then map keys (string) and list indexes (int)
	action    string // "insert", "delete", "set", "remove" or "add"
	index     int
	count     int
	key       string
	value     any
	newType   string // type of a nested container to create, instead of value
	add       int64
	rejected  bool

	// Send and sync.
	from, to string
	order    string // "", "reverse" or "twice"
	limit    int    // -1 for no limit
	syncWho  []string

	// Restart.
	restart string

	// Check.
	checkWho []string
	states   []map[string]any // one for "state", several for "oneOf"
}

type rawScenario struct {
	Name     string            `json:"name"`
	About    string            `json:"about"`
	Replicas []string          `json:"replicas"`
	Steps    []json.RawMessage `json:"steps"`
}

func parseScenario(data []byte) (*scenario, error) {
	var raw rawScenario
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	if raw.Name == "" {
		return nil, fmt.Errorf("missing name")
	}
	if len(raw.Replicas) == 0 {
		return nil, fmt.Errorf("no replicas")
	}
	sc := &scenario{Name: raw.Name, Replicas: raw.Replicas}
	for i, r := range raw.Replicas {
		if r == "" || r == "all" || slices.Contains(raw.Replicas[:i], r) {
			return nil, fmt.Errorf("replica name %q is empty, reserved or repeated", r)
		}
	}
	for i, rawStep := range raw.Steps {
		s, err := parseStep(rawStep, raw.Replicas)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
		sc.Steps = append(sc.Steps, s)
	}
	return sc, nil
}

// fields wraps a step's members and remembers which were read, so that an
// unknown or misplaced member is an error rather than silently ignored.
type fields struct {
	m    map[string]json.RawMessage
	used map[string]bool
}

func (f *fields) has(key string) bool { _, ok := f.m[key]; return ok }

func (f *fields) get(key string, dst any) error {
	raw, ok := f.m[key]
	if !ok {
		return fmt.Errorf("missing %q", key)
	}
	f.used[key] = true
	// Numbers in values and states stay json.Number, so that integers
	// beyond 2^53 compare and reach the document exactly.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("%q: %w", key, err)
	}
	return nil
}

func (f *fields) unused() error {
	for key := range f.m {
		if !f.used[key] {
			return fmt.Errorf("unexpected member %q", key)
		}
	}
	return nil
}

func parseStep(raw json.RawMessage, replicas []string) (step, error) {
	f := &fields{used: make(map[string]bool)}
	if err := json.Unmarshal(raw, &f.m); err != nil {
		return step{}, err
	}
	replica := func(name string) error {
		if !slices.Contains(replicas, name) {
			return fmt.Errorf("unknown replica %q", name)
		}
		return nil
	}

	var s step
	var err error
	switch {
	case f.has("at"):
		s, err = parseEdit(f, replica)
	case f.has("send"):
		s, err = parseSend(f, replica)
	case f.has("sync"):
		s.kind = stepSync
		s.syncWho, err = parseReplicaList(f, "sync", replicas, replica)
		if err == nil && len(s.syncWho) < 2 {
			err = fmt.Errorf("sync needs two or more replicas")
		}
	case f.has("restart"):
		s.kind = stepRestart
		if err = f.get("restart", &s.restart); err == nil {
			err = replica(s.restart)
		}
	case f.has("check"):
		s, err = parseCheck(f, replicas, replica)
	default:
		err = fmt.Errorf("no step kind: want at, send, sync, restart or check")
	}
	if err != nil {
		return step{}, err
	}
	return s, f.unused()
}

func parseEdit(f *fields, replica func(string) error) (step, error) {
	s := step{kind: stepEdit, limit: -1}
	if err := f.get("at", &s.at); err != nil {
		return s, err
	}
	if err := replica(s.at); err != nil {
		return s, err
	}
	for _, c := range []string{"text", "list", "map", "counter"} {
		if !f.has(c) {
			continue
		}
		if s.container != "" {
			return s, fmt.Errorf("both %q and %q", s.container, c)
		}
		s.container = c
		var err error
		if s.path, err = parsePath(f, c); err != nil {
			return s, err
		}
	}
	if s.container == "" {
		return s, fmt.Errorf("edit names no container: want text, list, map or counter")
	}
	if f.has("rejected") {
		if err := f.get("rejected", &s.rejected); err != nil {
			return s, err
		}
	}

	// valueOrNew reads the inserted or set value: a JSON value, or a new
	// nested container.
	valueOrNew := func() error {
		switch {
		case f.has("value") && f.has("new"):
			return fmt.Errorf("both value and new")
		case f.has("new"):
			if err := f.get("new", &s.newType); err != nil {
				return err
			}
			if !slices.Contains([]string{"text", "list", "map", "counter"}, s.newType) {
				return fmt.Errorf("new container type %q: want text, list, map or counter", s.newType)
			}
			return nil
		default:
			return f.get("value", &s.value)
		}
	}
	insertOrDelete := func() error {
		switch {
		case f.has("insert") && f.has("delete"):
			return fmt.Errorf("both insert and delete")
		case f.has("insert"):
			s.action = "insert"
			if err := f.get("insert", &s.index); err != nil {
				return err
			}
			return valueOrNew()
		case f.has("delete"):
			s.action = "delete"
			if err := f.get("delete", &s.index); err != nil {
				return err
			}
			return f.get("count", &s.count)
		}
		return fmt.Errorf("%s edit needs insert or delete", s.container)
	}

	switch s.container {
	case "text":
		if err := insertOrDelete(); err != nil {
			return s, err
		}
		if s.action == "insert" {
			if s.newType != "" {
				return s, fmt.Errorf("a text holds characters, not containers")
			}
			if _, ok := s.value.(string); !ok {
				return s, fmt.Errorf("text insert value %v is not a string", s.value)
			}
		}
	case "list":
		if err := insertOrDelete(); err != nil {
			return s, err
		}
	case "map":
		switch {
		case f.has("set") && f.has("remove"):
			return s, fmt.Errorf("both set and remove")
		case f.has("set"):
			s.action = "set"
			if err := f.get("set", &s.key); err != nil {
				return s, err
			}
			if err := valueOrNew(); err != nil {
				return s, err
			}
		case f.has("remove"):
			s.action = "remove"
			if err := f.get("remove", &s.key); err != nil {
				return s, err
			}
		default:
			return s, fmt.Errorf("map edit needs set or remove")
		}
	case "counter":
		s.action = "add"
		if err := f.get("add", &s.add); err != nil {
			return s, err
		}
	}
	return s, nil
}

// parsePath reads a container name or a path: a root name followed by map
// keys and list indexes.
func parsePath(f *fields, key string) ([]any, error) {
	var name string
	if err := f.get(key, &name); err == nil {
		return []any{name}, nil
	}
	var elems []json.RawMessage
	if err := f.get(key, &elems); err != nil {
		return nil, fmt.Errorf("%q is neither a name nor a path", key)
	}
	if len(elems) == 0 {
		return nil, fmt.Errorf("empty path in %q", key)
	}
	path := make([]any, len(elems))
	for i, e := range elems {
		var k string
		var n int
		switch {
		case json.Unmarshal(e, &k) == nil:
			path[i] = k
		case i > 0 && json.Unmarshal(e, &n) == nil && n >= 0:
			path[i] = n
		default:
			return nil, fmt.Errorf("path element %d of %q is %s; want a root name, key or list index", i, key, e)
		}
	}
	return path, nil
}

func parseSend(f *fields, replica func(string) error) (step, error) {
	s := step{kind: stepSend, limit: -1}
	if err := f.get("send", &s.from); err != nil {
		return s, err
	}
	if err := f.get("to", &s.to); err != nil {
		return s, err
	}
	for _, r := range []string{s.from, s.to} {
		if err := replica(r); err != nil {
			return s, err
		}
	}
	if s.from == s.to {
		return s, fmt.Errorf("send from %q to itself", s.from)
	}
	if f.has("order") {
		if err := f.get("order", &s.order); err != nil {
			return s, err
		}
		if s.order != "reverse" && s.order != "twice" {
			return s, fmt.Errorf("order %q: want reverse or twice", s.order)
		}
	}
	if f.has("limit") {
		if err := f.get("limit", &s.limit); err != nil {
			return s, err
		}
		if s.limit < 0 {
			return s, fmt.Errorf("negative limit %d", s.limit)
		}
	}
	return s, nil
}

// parseReplicaList reads "all", one replica name or a list of names.
func parseReplicaList(f *fields, key string, replicas []string, replica func(string) error) ([]string, error) {
	var name string
	if err := f.get(key, &name); err == nil {
		if name == "all" {
			return slices.Clone(replicas), nil
		}
		return []string{name}, replica(name)
	}
	var list []string
	if err := f.get(key, &list); err != nil {
		return nil, fmt.Errorf("%q is neither \"all\", a replica nor a list of replicas", key)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("empty replica list in %q", key)
	}
	for _, r := range list {
		if err := replica(r); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func parseCheck(f *fields, replicas []string, replica func(string) error) (step, error) {
	s := step{kind: stepCheck}
	var err error
	if s.checkWho, err = parseReplicaList(f, "check", replicas, replica); err != nil {
		return s, err
	}
	switch {
	case f.has("state") && f.has("oneOf"):
		return s, fmt.Errorf("both state and oneOf")
	case f.has("state"):
		var state map[string]any
		if err := f.get("state", &state); err != nil {
			return s, err
		}
		if state == nil {
			return s, fmt.Errorf("state is not an object")
		}
		s.states = []map[string]any{state}
	case f.has("oneOf"):
		if err := f.get("oneOf", &s.states); err != nil {
			return s, err
		}
		if len(s.states) == 0 {
			return s, fmt.Errorf("oneOf needs one or more state objects")
		}
		for _, state := range s.states {
			if state == nil {
				return s, fmt.Errorf("oneOf has a member that is not an object")
			}
		}
	default:
		return s, fmt.Errorf("check needs state or oneOf")
	}
	return s, nil
}

// scenarioReplica is one replica of a running scenario and the updates it
// holds: made locally or received, applied or held back.
type scenarioReplica struct {
	name string
	id   ReplicaID
	doc  *Doc
	held []int // indexes into scenarioRun.updates, in the order received
	has  map[int]bool
}

func (r *scenarioReplica) hold(u int) bool {
	if r.has[u] {
		return false
	}
	r.has[u] = true
	r.held = append(r.held, u)
	return true
}

type scenarioRun struct {
	t        *testing.T
	replicas map[string]*scenarioReplica
	updates  [][]byte // every update made, by index
}

func runScenario(t *testing.T, sc *scenario) {
	run := &scenarioRun{t: t, replicas: make(map[string]*scenarioReplica)}
	for _, name := range sc.Replicas {
		h := fnv.New64a()
		h.Write([]byte(name))
		id := ReplicaID(h.Sum64())
		run.replicas[name] = &scenarioReplica{name: name, id: id, doc: NewDoc(id), has: make(map[int]bool)}
	}
	for i, s := range sc.Steps {
		switch s.kind {
		case stepEdit:
			run.edit(i, s)
		case stepSend:
			run.send(i, run.replicas[s.from], run.replicas[s.to], s.order, s.limit)
		case stepSync:
			run.sync(i, s.syncWho)
		case stepRestart:
			run.restart(i, run.replicas[s.restart])
		case stepCheck:
			run.check(i, s)
		}
	}
}

func (run *scenarioRun) edit(i int, s step) {
	t := run.t
	r := run.replicas[s.at]
	before := r.doc.State()

	err := applyEdit(r.doc, s)
	update := r.doc.Commit()

	if s.rejected {
		if err == nil {
			t.Fatalf("step %d: %s %s %v on %s succeeded; want it rejected", i, s.action, s.container, s.path, s.at)
		}
		if after := r.doc.State(); !reflect.DeepEqual(before, after) {
			t.Fatalf("step %d: rejected edit changed the state of %s from %v to %v", i, s.at, before, after)
		}
		if update != nil {
			t.Fatalf("step %d: rejected edit made an update of %d bytes", i, len(update))
		}
		return
	}
	if err != nil {
		t.Fatalf("step %d: %s %s %v on %s: %v", i, s.action, s.container, s.path, s.at, err)
	}
	if update == nil {
		t.Fatalf("step %d: edit on %s made no update", i, s.at)
	}
	run.updates = append(run.updates, update)
	r.hold(len(run.updates) - 1)
}

// kindNames maps the type names of the case format to kinds.
var kindNames = map[string]Kind{"text": KindText, "list": KindList, "map": KindMap, "counter": KindCounter}

// applyEdit makes the edit of step s on d through the public API.
func applyEdit(d *Doc, s step) error {
	target, err := resolvePath(d, s.path, kindNames[s.container])
	if err != nil {
		return err
	}
	switch c := target.(type) {
	case *Text:
		if s.action == "insert" {
			return c.Insert(s.index, s.value.(string))
		}
		return c.Delete(s.index, s.count)
	case *List:
		switch {
		case s.action == "delete":
			return c.Delete(s.index, s.count)
		case s.newType != "":
			_, err := c.InsertNew(s.index, kindNames[s.newType])
			return err
		}
		return c.Insert(s.index, s.value)
	case *Map:
		switch {
		case s.action == "remove":
			return c.Remove(s.key)
		case s.newType != "":
			_, err := c.SetNew(s.key, kindNames[s.newType])
			return err
		}
		return c.Set(s.key, s.value)
	case *Counter:
		return c.Add(s.add)
	}
	return fmt.Errorf("container of unexpected type %T", target)
}

// resolvePath returns the container that a path reaches: a root, then one
// map key or list index per further element. The root's type is the
// step's type for a one-element path, and otherwise follows from the next
// element, a key for a map and an index for a list.
func resolvePath(d *Doc, path []any, want Kind) (Container, error) {
	name := path[0].(string)
	rootKind := want
	if len(path) > 1 {
		rootKind = KindMap
		if _, ok := path[1].(int); ok {
			rootKind = KindList
		}
	}
	var c Container
	var err error
	switch rootKind {
	case KindText:
		c, err = d.Text(name)
	case KindList:
		c, err = d.List(name)
	case KindMap:
		c, err = d.Map(name)
	case KindCounter:
		c, err = d.Counter(name)
	}
	if err != nil {
		return nil, err
	}

	for _, elem := range path[1:] {
		var v any
		switch key := elem.(type) {
		case string:
			m, ok := c.(*Map)
			if !ok {
				return nil, fmt.Errorf("path %v: key %q of a %s", path, key, c.Kind())
			}
			if v, ok = m.Get(key); !ok {
				return nil, fmt.Errorf("path %v: key %q is not set", path, key)
			}
		case int:
			l, ok := c.(*List)
			if !ok {
				return nil, fmt.Errorf("path %v: index %d of a %s", path, key, c.Kind())
			}
			if v, err = l.Get(key); err != nil {
				return nil, fmt.Errorf("path %v: %w", path, err)
			}
		}
		next, ok := v.(Container)
		if !ok {
			return nil, fmt.Errorf("path %v: %v is a plain value, not a container", path, elem)
		}
		c = next
	}
	if c.Kind() != want {
		return nil, fmt.Errorf("path %v reaches a %s, not a %s: %w", path, c.Kind(), want, ErrTypeMismatch)
	}
	return c, nil
}

// send delivers the updates that from holds and to lacks, in the given
// order, and reports whether to received any.
func (run *scenarioRun) send(i int, from, to *scenarioReplica, order string, limit int) bool {
	var list []int
	for _, u := range from.held {
		if !to.has[u] {
			list = append(list, u)
		}
	}
	if order == "reverse" {
		slices.Reverse(list)
	}
	if limit >= 0 && limit < len(list) {
		list = list[:limit]
	}
	times := 1
	if order == "twice" {
		times = 2
	}
	for _, u := range list {
		for range times {
			if err := to.doc.Apply(run.updates[u]); err != nil {
				run.t.Fatalf("step %d: %s applying update %d from %s: %v", i, to.name, u, from.name, err)
			}
		}
		to.hold(u)
	}
	return len(list) > 0
}

// sync exchanges updates among the replicas until each holds all that any
// of them holds.
func (run *scenarioRun) sync(i int, names []string) {
	for changed := true; changed; {
		changed = false
		for _, a := range names {
			for _, b := range names {
				if a != b && run.send(i, run.replicas[a], run.replicas[b], "", -1) {
					changed = true
				}
			}
		}
	}
}

// restart replaces r by a replica loaded from its saved state, and checks
// that nothing it had was lost.
func (run *scenarioRun) restart(i int, r *scenarioReplica) {
	t := run.t
	data, err := r.doc.Save()
	if err != nil {
		t.Fatalf("step %d: save %s: %v", i, r.name, err)
	}
	loaded, err := Load(data, r.id)
	if err != nil {
		t.Fatalf("step %d: load %s: %v", i, r.name, err)
	}
	if got, want := loaded.State(), r.doc.State(); !reflect.DeepEqual(got, want) {
		t.Fatalf("step %d: %s state after restart %v, before %v", i, r.name, got, want)
	}
	if got, want := loaded.HeldBack(), r.doc.HeldBack(); got != want {
		t.Fatalf("step %d: %s holds back %d updates after restart, %d before", i, r.name, got, want)
	}
	if got, want := loaded.Version(), r.doc.Version(); !reflect.DeepEqual(got, want) {
		t.Fatalf("step %d: %s version after restart %v, before %v", i, r.name, got, want)
	}
	r.doc = loaded
}

func (run *scenarioRun) check(i int, s step) {
	t := run.t
	var first any
	for n, name := range s.checkWho {
		r := run.replicas[name]
		got := normalizeState(t, r.doc.State())
		if n == 0 {
			first = got
		} else if len(s.states) > 1 && !reflect.DeepEqual(got, first) {
			t.Fatalf("step %d: %s has state %v, %s has %v; want all equal", i, name, got, s.checkWho[0], first)
		}
		matched := false
		for _, want := range s.states {
			if reflect.DeepEqual(got, normalizeState(t, want)) {
				matched = true
			}
		}
		if !matched {
			t.Fatalf("step %d: %s has state %v; want one of %v", i, name, got, s.states)
		}
		if len(r.held) == len(run.updates) && r.doc.HeldBack() != 0 {
			t.Fatalf("step %d: %s holds every update but still holds back %d", i, name, r.doc.HeldBack())
		}
	}
}

// normalizeState passes a state through JSON so that values compare the
// way the case file wrote them. Numbers compare by value: integers
// exactly, 4 and 4.0 as equal.
func normalizeState(t *testing.T, state map[string]any) any {
	data, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return canonicalNumbers(t, out)
}

// canonicalNumbers replaces every json.Number in v by an int64, a uint64
// or, for a number that is not an integer, a float64.
func canonicalNumbers(t *testing.T, v any) any {
	switch x := v.(type) {
	case json.Number:
		n, err := parseNumber(string(x))
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := n.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return int64(f)
		}
		return n
	case []any:
		for i := range x {
			x[i] = canonicalNumbers(t, x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = canonicalNumbers(t, x[k])
		}
	}
	return v
}

func TestParseScenarioRejectsMalformedSteps(t *testing.T) {
	steps := map[string]string{
		"unknown member":        `{"at":"A","text":"b","insert":0,"value":"x","colour":1}`,
		"text without value":    `{"at":"A","text":"b","insert":0}`,
		"text value not string": `{"at":"A","text":"b","insert":0,"value":3}`,
		"unknown replica":       `{"at":"Z","text":"b","insert":0,"value":"x"}`,
		"two containers":        `{"at":"A","text":"b","map":"m","insert":0,"value":"x"}`,
		"no container":          `{"at":"A","insert":0,"value":"x"}`,
		"delete without count":  `{"at":"A","text":"b","delete":0}`,
		"map set and remove":    `{"at":"A","map":"m","set":"k","remove":"k","value":1}`,
		"counter without add":   `{"at":"A","counter":"c"}`,
		"bad new type":          `{"at":"A","list":"l","insert":0,"new":"set"}`,
		"bad path element":      `{"at":"A","text":["e",1.5],"insert":0,"value":"x"}`,
		"send bad order":        `{"send":"A","to":"B","order":"random"}`,
		"send negative limit":   `{"send":"A","to":"B","limit":-1}`,
		"sync one replica":      `{"sync":["A"]}`,
		"check without state":   `{"check":"all"}`,
		"check state and oneOf": `{"check":"A","state":{},"oneOf":[{}]}`,
		"no step kind":          `{"to":"B"}`,
	}
	for name, s := range steps {
		t.Run(name, func(t *testing.T) {
			data := `{"name":"n","replicas":["A","B"],"steps":[` + s + `]}`
			if _, err := parseScenario([]byte(data)); err == nil {
				t.Errorf("step %s parsed without error", s)
			}
		})
	}

	valid := `{"name":"n","replicas":["A","B"],"steps":[` +
		`{"at":"A","list":"l","insert":0,"new":"map"},` +
		`{"at":"A","map":["l",0],"set":"k","value":{"x":[1,2]}},` +
		`{"at":"B","counter":"c","add":-2,"rejected":false},` +
		`{"send":"A","to":"B","order":"twice","limit":3},` +
		`{"sync":"all"},{"restart":"B"},` +
		`{"check":["A","B"],"oneOf":[{"l":[{"k":{"x":[1,2]}}]}]}]}`
	if _, err := parseScenario([]byte(valid)); err != nil {
		t.Fatalf("valid scenario: %v", err)
	}
}
