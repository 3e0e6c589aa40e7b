package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// outbox keeps secondary writes on disk, in DIR/queue.db (bbolt), from the
// moment before the primary is sent a write until the secondary has it, so
// that neither a crash of the gateway nor a long outage of the secondary
// loses one. Held writes (given up, or to verify) stay until an operator
// re-drives or discards them.
//
// Every change goes through one committer goroutine that applies all the
// changes queued while the previous transaction was syncing in one
// transaction: a group commit. An idle gateway commits at once (bbolt's own
// DB.Batch waits up to 10 ms for company, and may run a function twice);
// a busy one amortises each fsync over every request that arrived
// meanwhile, so requests never queue behind one fsync each.
type outbox struct {
	db *bolt.DB
	// observe reports each commit: how many changes, how long, the error of
	// the whole transaction, and the changes that failed alone (most are
	// submitted without anyone waiting for them, so this is where they are
	// seen).
	observe func(n int, d time.Duration, err error, failed []*op)

	mu      sync.Mutex
	cond    *sync.Cond
	ops     []*op
	closing bool
	stopped chan struct{}
}

// Bucket names. A write lives in exactly one of intents (by ID), queue (by
// Order, with an entry in byKey) and held (by ID).
var (
	bucketIntents = []byte("intents")
	bucketQueue   = []byte("queue")
	bucketByKey   = []byte("by_key")
	bucketHeld    = []byte("held")
	// bucketMeta keeps keyHigh: the highest ID or order ever written, so
	// that a restart never hands out again the ID of a write delivered,
	// replayed or discarded since (the operator and the audit log name held
	// writes by it, and pollers page through them with after=).
	bucketMeta = []byte("meta")
	keyHigh    = []byte("high")
)

type opKind uint8

var opNames = [...]string{opIntent: "intent", opAccept: "accept", opDrop: "drop", opHoldIntent: "hold_intent", opAck: "ack",
	opAttempted: "attempted", opGiveUp: "give_up", opRequeue: "requeue", opDiscard: "discard", opSupersede: "supersede"}

func (k opKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return "op(" + strconv.Itoa(int(k)) + ")"
}

const (
	opIntent     opKind = iota // record an intent
	opAccept                   // intent → queue at rec.Order
	opDrop                     // forget an intent: the primary refused, or never saw it
	opHoldIntent               // intent → held: to verify, or given up
	opAck                      // the secondary has it: forget it
	opAttempted                // remember a failed attempt
	opGiveUp                   // queue → held, given up
	opRequeue                  // held → queue at order (re-drive)
	opDiscard                  // forget a held write
	opSupersede                // mark a held write overtaken by a later one
)

// op is one change for the committer. Its fields are read by the committer
// only; done is closed once the change is on disk, or failed with err.
type op struct {
	kind opKind
	// rec holds the fields to set; it is the committer's alone once
	// submitted. enc is the whole record, encoded when submitted (the
	// caller goes on changing its record).
	rec   *record
	enc   []byte
	id    uint64
	order uint64
	key   string
	err   error
	done  chan struct{}
}

// wait blocks until the change is on disk and says whether it got there.
func (o *op) wait() error {
	<-o.done
	return o.err
}

// appendFill is the page fill of buckets whose keys only grow.
const appendFill = 0.95

var (
	errOutboxClosed = errors.New("queue store closed")
	errNotFound     = errors.New("no such write")
)

// openOutbox opens DIR/queue.db.
func openOutbox(dir string, observe func(int, time.Duration, error, []*op)) (*outbox, error) {
	path := filepath.Join(dir, "queue.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		// A second gateway on the same directory fails instead of hanging on
		// the file lock.
		Timeout: 2 * time.Second,
		// The freelist is rebuilt by scanning at open instead of being
		// written on every commit: a queue that churns would otherwise
		// rewrite a growing freelist with each group commit.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s is locked by another cutover (one gateway per data directory): stop it, or pass another --data-dir", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open queue %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketIntents, bucketQueue, bucketByKey, bucketHeld, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open queue %s: %w", path, err)
	}
	if observe == nil {
		observe = func(int, time.Duration, error, []*op) {}
	}
	o := &outbox{db: db, observe: observe, stopped: make(chan struct{})}
	o.cond = sync.NewCond(&o.mu)
	go o.commit()
	return o, nil
}

// submitRecord hands the committer a change that writes r whole: r is
// encoded now, and the op keeps a copy of the fields it needs.
func (o *outbox) submitRecord(kind opKind, r *record) *op {
	c := *r
	c.body = nil
	return o.submit(&op{kind: kind, id: r.ID, order: r.Order, rec: &c, enc: r.encode()})
}

// submit hands a change to the committer; wait on the op for it to land.
func (o *outbox) submit(x *op) *op {
	x.done = make(chan struct{})
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		x.err = errOutboxClosed
		close(x.done)
		return x
	}
	o.ops = append(o.ops, x)
	o.cond.Signal()
	o.mu.Unlock()
	return x
}

// commit is the committer: it applies every queued change in one
// transaction (one fsync), in the order they were submitted, until close.
func (o *outbox) commit() {
	defer close(o.stopped)
	for {
		o.mu.Lock()
		for len(o.ops) == 0 && !o.closing {
			o.cond.Wait()
		}
		batch := o.ops
		o.ops = nil
		closing := o.closing
		o.mu.Unlock()
		if len(batch) == 0 && closing {
			return
		}
		start := time.Now()
		var failed []*op
		err := o.db.Update(func(tx *bolt.Tx) error {
			failed = failed[:0]
			var high uint64
			for _, x := range batch {
				x.err = apply(tx, x)
				// A write that is gone already (replayed, discarded) is the
				// caller's answer, not a fault of the store.
				if x.err != nil && !errors.Is(x.err, errNotFound) {
					failed = append(failed, x)
				}
				high = max(high, x.id, x.order)
				if x.rec != nil {
					high = max(high, x.rec.ID, x.rec.Order)
				}
			}
			meta := tx.Bucket(bucketMeta)
			if high > bytesU64(meta.Get(keyHigh)) {
				return meta.Put(keyHigh, u64(high))
			}
			return nil
		})
		o.observe(len(batch), time.Since(start), err, failed)
		for _, x := range batch {
			if err != nil {
				x.err = err
			}
			close(x.done)
		}
	}
}

// apply makes one change inside the committer's transaction. An error
// concerns that change only (errNotFound); the others still commit.
func apply(tx *bolt.Tx, x *op) error {
	intents, queue, byKey, held := tx.Bucket(bucketIntents), tx.Bucket(bucketQueue), tx.Bucket(bucketByKey), tx.Bucket(bucketHeld)
	// These are written in key order (appends): full pages, not bbolt's
	// half-full default, halve the file a backlog takes (and the pages of it
	// the process maps).
	intents.FillPercent, queue.FillPercent, held.FillPercent = appendFill, appendFill, appendFill
	switch x.kind {
	case opIntent:
		return intents.Put(u64(x.rec.ID), x.enc)
	case opAccept:
		if err := intents.Delete(u64(x.rec.ID)); err != nil {
			return err
		}
		if err := queue.Put(u64(x.rec.Order), x.enc); err != nil {
			return err
		}
		return byKey.Put(keyIndex(x.rec.Key, x.rec.Order), indexValue(x.rec))
	case opDrop:
		return intents.Delete(u64(x.id))
	case opHoldIntent:
		r, err := get(intents, u64(x.id))
		if err != nil {
			return err
		}
		r.State, r.Held, r.Reason, r.Status, r.LastErr, r.Superseded = x.rec.State, x.rec.Held, x.rec.Reason, x.rec.Status, x.rec.LastErr, x.rec.Superseded
		if err := held.Put(u64(r.ID), r.encode()); err != nil {
			return err
		}
		return intents.Delete(u64(x.id))
	case opAck:
		if err := queue.Delete(u64(x.order)); err != nil {
			return err
		}
		return byKey.Delete(keyIndex(x.key, x.order))
	case opAttempted:
		r, err := get(queue, u64(x.order))
		if err != nil {
			return nil // landed or given up meanwhile
		}
		r.Attempts, r.LastErr = x.rec.Attempts, x.rec.LastErr
		return queue.Put(u64(x.order), r.encode())
	case opGiveUp:
		r, err := get(queue, u64(x.order))
		if err != nil {
			return err
		}
		r.State, r.Held, r.Reason, r.Attempts, r.LastErr, r.Superseded = stateGaveUp, x.rec.Held, x.rec.Reason, x.rec.Attempts, x.rec.LastErr, x.rec.Superseded
		if err := held.Put(u64(r.ID), r.encode()); err != nil {
			return err
		}
		if err := queue.Delete(u64(x.order)); err != nil {
			return err
		}
		return byKey.Delete(keyIndex(r.Key, x.order))
	case opRequeue:
		r, err := get(held, u64(x.id))
		if err != nil {
			return err
		}
		r.Redriven, r.Origin, r.Superseded = x.rec.Redriven, x.rec.Origin, x.rec.Superseded
		r.State, r.Order, r.First, r.Attempts, r.LastErr, r.Held, r.Reason, r.Status = stateQueued, x.order, x.rec.First, 0, "", time.Time{}, "", 0
		if err := queue.Put(u64(r.Order), r.encode()); err != nil {
			return err
		}
		if err := byKey.Put(keyIndex(r.Key, r.Order), indexValue(r)); err != nil {
			return err
		}
		return held.Delete(u64(x.id))
	case opDiscard:
		if held.Get(u64(x.id)) == nil {
			return errNotFound
		}
		return held.Delete(u64(x.id))
	case opSupersede:
		r, err := get(held, u64(x.id))
		if err != nil {
			return nil // replayed or discarded meanwhile
		}
		r.Superseded = x.rec.Superseded
		return held.Put(u64(x.id), r.encode())
	}
	return fmt.Errorf("unknown queue change %d", x.kind)
}

func get(b *bolt.Bucket, k []byte) (*record, error) {
	v := b.Get(k)
	if v == nil {
		return nil, errNotFound
	}
	return decodeRecord(v, true)
}

// load reads a queued write with its body.
func (o *outbox) load(order uint64) (*record, error) {
	var r *record
	err := o.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = get(tx.Bucket(bucketQueue), u64(order))
		return err
	})
	return r, err
}

// heldRecord reads a held write with its body.
func (o *outbox) heldRecord(id uint64) (*record, error) {
	var r *record
	err := o.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = get(tx.Bucket(bucketHeld), u64(id))
		return err
	})
	return r, err
}

// nextOfKey returns up to limit queued writes of one resource after order
// after, oldest first, without their bodies, and the index entries it
// passed whose write is not in the store (a damaged file).
func (o *outbox) nextOfKey(key string, after uint64, limit int) (out []*record, missing []indexEntry, err error) {
	err = o.db.View(func(tx *bolt.Tx) error {
		queue := tx.Bucket(bucketQueue)
		prefix := keyPrefix(key)
		c := tx.Bucket(bucketByKey).Cursor()
		for k, iv := c.Seek(keyIndex(key, after+1)); k != nil && len(out) < limit && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, iv = c.Next() {
			order := k[len(prefix):]
			v := queue.Get(order)
			if v == nil {
				if e, ok := parseIndex(k, iv); ok {
					missing = append(missing, e)
				}
				continue
			}
			r, err := decodeRecord(v, false)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, missing, err
}

// listHeld returns held writes in ID order after the given ID, without
// bodies: those in state (any when empty) and of route (any when empty).
func (o *outbox) listHeld(state recordState, route string, after uint64, limit int) ([]*record, error) {
	var out []*record
	if after == math.MaxUint64 {
		return nil, nil // nothing comes after it (after+1 would wrap to the first)
	}
	err := o.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHeld).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			r, err := decodeRecord(v, false)
			if err != nil {
				return err
			}
			if (state == "" || r.State == state) && (route == "" || r.Route == route) {
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// recovered is what a restart finds on disk.
type recovered struct {
	// next is above every ID and Order in use.
	next uint64
	// verified counts the intents a crash left, now held to verify.
	verified int
}

// recover turns the intents a crash left into verify records (the primary
// may or may not have applied them), then reports every queued write
// through queued (grouped by resource key, oldest first) and every held
// write through held.
func (o *outbox) recover(now time.Time, queued func(indexEntry), held func(*record)) (recovered, error) {
	var rec recovered
	err := o.db.Update(func(tx *bolt.Tx) error {
		intents, heldB := tx.Bucket(bucketIntents), tx.Bucket(bucketHeld)
		var ids [][]byte
		err := intents.ForEach(func(k, v []byte) error {
			r, err := decodeRecord(v, true)
			if err != nil {
				return fmt.Errorf("write %d, under way when cutover stopped: %w", bytesU64(k), err)
			}
			r.State, r.Held, r.Reason = stateVerify, now, reasonGatewayStopped
			ids = append(ids, append([]byte(nil), k...))
			return heldB.Put(k, r.encode())
		})
		if err != nil {
			return err
		}
		for _, k := range ids {
			if err := intents.Delete(k); err != nil {
				return err
			}
		}
		rec.verified = len(ids)
		return nil
	})
	if err != nil {
		return rec, err
	}
	err = o.db.View(func(tx *bolt.Tx) error {
		// Files written before the high mark was kept have none: their last
		// keys are the best that is known.
		rec.next = bytesU64(tx.Bucket(bucketMeta).Get(keyHigh))
		for _, b := range [][]byte{bucketQueue, bucketHeld} {
			if k, _ := tx.Bucket(b).Cursor().Last(); k != nil {
				rec.next = max(rec.next, bytesU64(k))
			}
		}
		queue := tx.Bucket(bucketQueue)
		err := tx.Bucket(bucketByKey).ForEach(func(k, v []byte) error {
			if e, ok := parseIndex(k, v); ok {
				if !e.hasOverride {
					// Written before the index kept the override, or cut
					// short: read from the record (at each start, until
					// the write leaves the queue), with the route of a
					// value cut short. A record that does not decode is
					// counted for no override here; its turn logs it and
					// counts it in cutover_queue_store_errors_total.
					if v := queue.Get(u64(e.order)); v != nil {
						if r, err := decodeRecord(v, false); err == nil {
							e.override = r.Override
							if e.route == "" {
								e.route = r.Route
							}
						}
					}
				}
				queued(e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketHeld).ForEach(func(k, v []byte) error {
			r, err := decodeRecord(v, false)
			if err != nil {
				return fmt.Errorf("held write %d: %w", bytesU64(k), err)
			}
			held(r)
			return nil
		})
	})
	rec.next++
	return rec, err
}

func bytesU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n
}

// close lets the committer write what is queued, stops it and closes the
// file.
func (o *outbox) close() error {
	o.mu.Lock()
	o.closing = true
	o.cond.Signal()
	o.mu.Unlock()
	<-o.stopped
	return o.db.Close()
}
