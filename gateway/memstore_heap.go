package gateway

// expiryHeap orders a memStore class's entries by expiry, soonest first;
// each entry knows its index, so removing or re-timing one is O(log n).
type expiryHeap []*memEntry

func (h *expiryHeap) push(e *memEntry) {
	e.idx = len(*h)
	*h = append(*h, e)
	h.up(e.idx)
}

// remove takes e out of the heap.
func (h *expiryHeap) remove(e *memEntry) {
	s := *h
	i, last := e.idx, len(s)-1
	if i != last {
		s.swap(i, last)
	}
	s[last] = nil
	*h = s[:last]
	if i != last {
		h.fix(s[i])
	}
	e.idx = -1
}

// fix restores the order after e's expiry changed.
func (h *expiryHeap) fix(e *memEntry) {
	if !h.down(e.idx) {
		h.up(e.idx)
	}
}

func (h expiryHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}

func (h expiryHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].expires <= h[i].expires {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// down sifts i toward the leaves; it reports whether i moved.
func (h expiryHeap) down(i int) bool {
	start, n := i, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h[r].expires < h[l].expires {
			c = r
		}
		if h[i].expires <= h[c].expires {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > start
}
