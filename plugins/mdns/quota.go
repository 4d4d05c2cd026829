package mdns

import "container/list"

// quota tracks items (cache instances, reported peers) by the source that
// brought them, so that when room runs out the item to give way is the
// oldest one of the source holding the most: a flooding host pushes out its
// own entries first and never those of a host with fewer. Every operation
// is O(1). The zero value is empty and ready.
type quota[K comparable] struct {
	items   map[K]*list.Element // item → its element in its source's list
	sources map[srcKey]*list.List
	buckets map[int]map[srcKey]struct{} // count → sources holding that many
	top     int                         // highest count held by a source
}

// quotaItem is what a source's list holds.
type quotaItem[K comparable] struct {
	key K
	src srcKey
}

// len is the number of items.
func (q *quota[K]) len() int { return len(q.items) }

// count is the number of items src holds.
func (q *quota[K]) count(src srcKey) int {
	if l := q.sources[src]; l != nil {
		return l.Len()
	}
	return 0
}

// has reports whether k is tracked.
func (q *quota[K]) has(k K) bool {
	_, ok := q.items[k]
	return ok
}

// add tracks k as brought by src; a tracked k is left alone.
func (q *quota[K]) add(k K, src srcKey) {
	if q.has(k) {
		return
	}
	if q.items == nil {
		q.items = make(map[K]*list.Element)
		q.sources = make(map[srcKey]*list.List)
		q.buckets = make(map[int]map[srcKey]struct{})
	}
	l := q.sources[src]
	if l == nil {
		l = list.New()
		q.sources[src] = l
	}
	n := l.Len()
	q.items[k] = l.PushBack(quotaItem[K]{k, src})
	q.move(src, n, n+1)
}

// remove stops tracking k; it reports whether k was tracked.
func (q *quota[K]) remove(k K) bool {
	e, ok := q.items[k]
	if !ok {
		return false
	}
	delete(q.items, k)
	src := e.Value.(quotaItem[K]).src
	l := q.sources[src]
	n := l.Len()
	l.Remove(e)
	if n == 1 {
		delete(q.sources, src)
	}
	q.move(src, n, n-1)
	return true
}

// move moves src from the bucket of count from to that of count to.
func (q *quota[K]) move(src srcKey, from, to int) {
	if b := q.buckets[from]; b != nil {
		delete(b, src)
		if len(b) == 0 {
			delete(q.buckets, from)
		}
	}
	if to > 0 {
		b := q.buckets[to]
		if b == nil {
			b = make(map[srcKey]struct{})
			q.buckets[to] = b
		}
		b[src] = struct{}{}
	}
	switch {
	case to > q.top:
		q.top = to
	case from == q.top && len(q.buckets[from]) == 0:
		q.top = to // counts move by one: the next bucket down holds src (or all is empty)
	}
}

// victim returns the item to give way to a newcomer from src: the oldest
// item of a source that holds more than src does. ok is false when src
// already holds as many as anyone (the newcomer should be dropped instead).
func (q *quota[K]) victim(src srcKey) (k K, ok bool) {
	if q.top <= q.count(src) {
		return k, false
	}
	for s := range q.buckets[q.top] {
		return q.sources[s].Front().Value.(quotaItem[K]).key, true
	}
	return k, false // unreachable: the top bucket is never empty
}
