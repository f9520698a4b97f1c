package membership

import (
	"testing"
)

// BenchmarkRemoveFromHundred builds and checks the removal of one member
// from a document of 100 members: a fresh key sealed to the 99 others.
// It reports the entry's encoded size.
func BenchmarkRemoveFromHundred(b *testing.B) {
	admin := newPerson(b)
	s, key, _ := newLog(b, admin)
	var last person
	for range 99 {
		last = newPerson(b)
		e, err := s.NewAdd(admin.sign, last.member(RoleWriter), key)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Apply(e); err != nil {
			b.Fatal(err)
		}
	}
	var size int
	for b.Loop() {
		e, _, err := s.NewRemove(admin.sign, last.key(), key)
		if err != nil {
			b.Fatal(err)
		}
		size = len(e.Encode())
	}
	b.ReportMetric(float64(size), "entry-bytes")
}

// BenchmarkApplyAdd measures the check a relay runs on each entry.
func BenchmarkApplyAdd(b *testing.B) {
	admin, writer := newPerson(b), newPerson(b)
	s, key, _ := newLog(b, admin)
	e, err := s.NewAdd(admin.sign, writer.member(RoleWriter), key)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.Clone().Apply(e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(e.Encode())), "entry-bytes")
}
