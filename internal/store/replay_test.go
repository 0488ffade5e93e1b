package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
	"github.com/sluicedata/sluice/schemas"
)

func TestReplayChunkIngestsOnce(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	w := &store.Writer{DB: db}
	at := time.Now().UTC().Truncate(time.Second)
	// Twelve parked letters: ten that a fixed decoder accepts (two share an
	// event_id), two still broken.
	var dead []store.DeadLetter
	for i := 0; i < 12; i++ {
		raw := fmt.Sprintf(`{"event_id":"x%d","type":"share","occurred_at":%q,"user_id":"u%d","item_id":"r1","channel":"qq"}`, i%9, at.Format(time.RFC3339), i)
		if i >= 10 {
			raw = "garbage-" + fmt.Sprint(i)
		}
		dead = append(dead, store.DeadLetter{Partition: int32(i % 2), Offset: int64(i), Raw: []byte(raw), Reason: "old validator said no"})
	}
	if _, err := w.Write(ctx, &store.Batch{Pipeline: "p", Topic: "t", Dead: dead,
		Offsets: []store.OffsetAdvance{{Partition: 0, From: -1, To: 12}}}); err != nil {
		t.Fatal(err)
	}
	decode := func(raw []byte) (schemas.Event, error) {
		if strings.HasPrefix(string(raw), "garbage") {
			return schemas.Event{}, errors.New("body: still garbage")
		}
		return schemas.DecodeEvent(raw, time.Now())
	}
	sel := store.ReplaySelection{Pipeline: "p", Topic: "t", FromDate: at.AddDate(0, 0, -1), ToDate: at.AddDate(0, 0, 1)}
	replayAll := func() store.ReplayResult {
		var total store.ReplayResult
		var cur store.ReplayCursor
		for {
			res, next, done, err := w.ReplayChunk(ctx, sel, cur, 4, decode)
			if err != nil {
				t.Fatal(err)
			}
			total.Add(res)
			cur = next
			if done {
				return total
			}
		}
	}
	first := replayAll()
	if first.Scanned != 12 || first.Ingested != 9 || first.Duplicates != 1 || first.StillInvalid != 2 {
		t.Fatalf("first replay = %+v, want 12 scanned, 9 ingested, 1 duplicate, 2 still invalid", first)
	}
	second := replayAll()
	if second.Ingested != 0 || second.Scanned != 2 || second.StillInvalid != 2 {
		t.Fatalf("second replay = %+v, want only the 2 still-invalid letters looked at again", second)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM events"); n != 9 {
		t.Fatalf("events = %d, want 9", n)
	}
	if n := count(t, db, "SELECT SUM(cnt) FROM item_counts_minute"); n != 9 {
		t.Fatalf("counts = %d, want 9", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL AND replay_note LIKE 'still invalid%'"); n != 2 {
		t.Fatalf("still parked = %d, want 2", n)
	}
	// Selecting one message by coordinates.
	one := int32(0)
	sel.Partition, sel.Offsets = &one, []int64{10}
	res, _, _, err := w.ReplayChunk(ctx, sel, store.ReplayCursor{}, 10, decode)
	if err != nil || res.Scanned != 1 {
		t.Fatalf("replay of partition 0 offset 10 = %+v, %v", res, err)
	}
	parked, err := store.ListDeadLetters(ctx, db, "p", "t", at.AddDate(0, 0, -1), false, 100)
	if err != nil || len(parked) != 2 {
		t.Fatalf("list = %d letters, %v; want the 2 still parked", len(parked), err)
	}
}
