package schemas_test

import (
	"context"
	"sort"
	"sync"
	"testing"

	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
	"github.com/sluicedata/sluice/schemas"
)

func TestMigrationsParse(t *testing.T) {
	migs, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) == 0 || migs[0].Version != 1 {
		t.Fatalf("migrations = %+v", migs)
	}
	if n := len(migs[0].Statements()); n != 4 || len(migs) < 2 {
		t.Fatalf("0001 has %d statements, want 4", n)
	}
}

func TestMigrateConcurrentlyAndTwice(t *testing.T) {
	db, dsn := mysqltest.New(t) // already migrated once
	ctx := context.Background()
	if got, err := schemas.Migrate(ctx, db.DB); err != nil || len(got) != 0 {
		t.Fatalf("second run applied %v (err %v), want nothing", got, err)
	}
	// A fresh database migrated by four processes at once.
	if _, err := db.Exec("DROP TABLE schema_migrations, events, item_counts_minute, kafka_offsets, dead_letters"); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		all []int
		wg  sync.WaitGroup
	)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other, err := store.Open(ctx, dsn)
			if err != nil {
				t.Error(err)
				return
			}
			defer other.Close()
			got, err := schemas.Migrate(ctx, other.DB)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			all = append(all, got...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Ints(all)
	migs, _ := schemas.Migrations()
	if len(all) != len(migs) {
		t.Fatalf("versions applied across processes = %v, want each of %d exactly once", all, len(migs))
	}
	var n int
	if err := db.Get(&n, "SELECT COUNT(*) FROM schema_migrations"); err != nil || n != len(migs) {
		t.Fatalf("schema_migrations rows = %d (%v)", n, err)
	}
}
