package mapmatch

import (
	"github.com/hextrack/hextrack/geo/road"
)

// search is a Dijkstra search over edge lengths from one state's edge head,
// bounded by a distance; its arrays are reused between searches (stamped
// by generation, so nothing is cleared) and pooled between matches.
type search struct {
	from    road.EdgeID // the edge whose head the last run started at; -1: none
	bound   float64
	dist    []float64
	parent  []road.EdgeID
	stamp   []uint32
	done    []uint32
	gen     uint32
	heap    []item
	targets []road.NodeID
}

type item struct {
	d float64
	n road.NodeID
}

func (m *Matcher) search() *search {
	if s, ok := m.pool.Get().(*search); ok {
		return s
	}
	n := m.g.NumNodes()
	return &search{from: -1, dist: make([]float64, n), parent: make([]road.EdgeID, n),
		stamp: make([]uint32, n), done: make([]uint32, n)}
}

// run searches from the head of p's edge until every target's edge tail
// is settled or the route from p would exceed limit. A run from the same
// edge with a bound at least as long is reused.
func (s *search) run(m *Matcher, p state, targets []state, limit float64) {
	start := m.head[p.edge]
	bound := limit - (1-p.frac)*m.lens[p.edge]
	s.targets = s.targets[:0]
	for _, t := range targets {
		s.targets = append(s.targets, m.tail[t.edge])
	}
	if s.from == p.edge && s.bound >= bound && s.allDone() {
		return
	}
	s.from, s.bound = p.edge, bound
	s.gen++
	if s.gen == 0 {
		clear(s.stamp)
		clear(s.done)
		s.gen = 1
	}
	s.heap = s.heap[:0]
	if bound < 0 {
		return
	}
	s.relax(start, 0, -1)
	left := len(s.targets)
	for len(s.heap) > 0 && left > 0 {
		it := s.pop()
		u := it.n
		if s.done[u] == s.gen {
			continue
		}
		if it.d > bound {
			break
		}
		s.done[u] = s.gen
		for _, t := range s.targets {
			if t == u {
				left--
			}
		}
		lo, hi := m.g.OutEdges(u)
		for e := lo; e < hi; e++ {
			v := m.head[e]
			if s.done[v] != s.gen {
				s.relax(v, it.d+m.lens[e], e)
			}
		}
	}
}

// allDone reports whether the last run settled every current target (or
// proved it out of bounds: a reused run would answer the same).
func (s *search) allDone() bool {
	for _, t := range s.targets {
		if s.done[t] != s.gen {
			return false
		}
	}
	return true
}

// settled is the settled distance from the run's start to n.
func (s *search) settled(n road.NodeID) (float64, bool) {
	if s.done[n] != s.gen {
		return 0, false
	}
	return s.dist[n], true
}

// parentOf is the edge the shortest path enters n by (false at the start).
func (s *search) parentOf(n road.NodeID) (road.EdgeID, bool) {
	if s.done[n] != s.gen || s.parent[n] < 0 {
		return 0, false
	}
	return s.parent[n], true
}

func (s *search) relax(v road.NodeID, d float64, via road.EdgeID) {
	if s.stamp[v] == s.gen && d >= s.dist[v] {
		return
	}
	s.stamp[v], s.dist[v], s.parent[v] = s.gen, d, via
	s.push(item{d, v})
}

func (s *search) push(it item) {
	s.heap = append(s.heap, it)
	h := s.heap
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p].d <= h[i].d {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (s *search) pop() item {
	h := s.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		c := l
		if r := l + 1; r < len(h) && h[r].d < h[l].d {
			c = r
		}
		if h[i].d <= h[c].d {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	s.heap = h
	return top
}
