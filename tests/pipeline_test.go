package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/sluicedata/sluice/internal/devstack"
	"github.com/sluicedata/sluice/internal/loadgen"
	"github.com/sluicedata/sluice/workflows"
)

func postJSON(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestOneEventLandsInMySQL posts one share event through the collector and
// waits for its raw row and its minute count; it also checks the UI serves
// and the stream workflow is running.
func TestOneEventLandsInMySQL(t *testing.T) {
	cfg, db, _ := newStackConfig(t, true)
	s := startStack(t, cfg)
	defer stopStack(t, s)

	at := time.Now().UTC().Truncate(time.Second)
	body := fmt.Sprintf(`[{"event_id":"one-1","type":"share","occurred_at":%q,"user_id":"u1","item_id":"r42","channel":"wechat","city":"shanghai"}]`, at.Format(time.RFC3339))
	posted := time.Now()
	code, resp := postJSON(t, s.Collector+"/v1/events", body)
	if code != 200 || !strings.Contains(resp, `"accepted":1`) {
		t.Fatalf("POST answered %d %s", code, resp)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute WHERE item_id = 'r42' AND type = 'share'") == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("event visible in item_counts_minute %s after the POST", time.Since(posted).Round(time.Millisecond))
	if n := queryInt(t, db, "SELECT COUNT(*) FROM events WHERE event_id = 'one-1' AND event_date = ? AND user_id = 'u1' AND channel = 'wechat'", at.Format("2006-01-02")); n != 1 {
		t.Fatalf("events rows for one-1 = %d, want 1", n)
	}
	if n := queryInt(t, db, "SELECT cnt FROM item_counts_minute WHERE item_id = 'r42' AND minute_start = ? AND city = 'shanghai'", at.Truncate(time.Minute)); n != 1 {
		t.Fatalf("minute count = %d, want 1", n)
	}

	// The stream workflow is running and answers its status query.
	desc, err := s.Client.DescribeWorkflowExecution(context.Background(), devstack.StreamWorkflowID("default"), "")
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.WorkflowExecutionInfo.Status.String(); st != "Running" {
		t.Fatalf("stream workflow status = %s", st)
	}
	v, err := s.Client.QueryWorkflow(context.Background(), devstack.StreamWorkflowID("default"), "", workflows.QueryStatus)
	if err != nil {
		t.Fatal(err)
	}
	var status workflows.StreamStatus
	if err := v.Get(&status); err != nil || status.Phase != "consuming" || status.Topic != cfg.Topic {
		t.Fatalf("status = %+v (%v)", status, err)
	}
	// The pending consume activity heartbeats its progress for the UI.
	if len(desc.PendingActivities) != 1 || desc.PendingActivities[0].ActivityType.GetName() != "Consume" {
		t.Fatalf("pending activities = %v", desc.PendingActivities)
	}

	// The Web UI answers.
	resp2, err := http.Get(s.UIURL + "/namespaces/default/workflows")
	if err != nil {
		t.Fatalf("Temporal UI: %v", err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 200 {
		t.Fatalf("Temporal UI answered %d", resp2.StatusCode)
	}
}

// TestVolumeExactTotals is the volume test: 10,000 loadgen events with 5%
// duplicates and 1% invalid through the HTTP collector, then exact totals;
// then a batch straight into Kafka with garbage that must be dead-lettered.
func TestVolumeExactTotals(t *testing.T) {
	cfg, db, _ := newStackConfig(t, false)
	s := startStack(t, cfg)
	defer stopStack(t, s)
	ctx := context.Background()

	lg := loadgen.DefaultConfig()
	lg.Count, lg.DuplicateRatio, lg.BadRatio, lg.Seed, lg.BatchSize = 10000, 0.05, 0.01, 7, 500
	start := time.Now()
	stats, err := loadgen.Run(ctx, lg, &loadgen.HTTPSink{URL: s.Collector + "/v1/events", Client: &http.Client{Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	posted := time.Since(start)
	end := waitCaughtUp(t, s, db, cfg.Topic, 120*time.Second)
	elapsed := time.Since(start)
	t.Logf("loadgen %+v; posted in %s, in MySQL after %s: %.0f events/s end to end",
		stats, posted.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(stats.Emitted)/elapsed.Seconds())

	if stats.Invalid == 0 || stats.Duplicates == 0 {
		t.Fatalf("loadgen made no invalid or duplicate events: %+v", stats)
	}
	if got := queryInt(t, db, "SELECT COUNT(*) FROM events"); got != int64(stats.Valid) {
		t.Errorf("events rows = %d, want the %d distinct valid events", got, stats.Valid)
	}
	if got := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute WHERE type = 'share'"); got != int64(stats.ValidByType["share"]) {
		t.Errorf("sum of share counts = %d, want the %d distinct valid shares", got, stats.ValidByType["share"])
	}
	if got := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute"); got != int64(stats.Valid) {
		t.Errorf("sum of all counts = %d, want %d", got, stats.Valid)
	}
	dead := queryInt(t, db, "SELECT COUNT(*) FROM dead_letters")
	if int64(stats.Rejected)+dead != int64(stats.Invalid) {
		t.Errorf("rejected %d + dead-lettered %d != invalid %d", stats.Rejected, dead, stats.Invalid)
	}
	var total int64
	for _, e := range end {
		total += e
	}
	if total != int64(stats.Accepted) {
		t.Errorf("messages in Kafka = %d, want the %d accepted", total, stats.Accepted)
	}

	// Straight into Kafka, past the collector: garbage is dead-lettered with
	// its coordinates and the pipeline goes on.
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	prod, err := sarama.NewSyncProducer(s.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	lg2 := lg
	lg2.Count, lg2.BadRatio, lg2.DuplicateRatio, lg2.Seed, lg2.RunID = 2000, 0.1, 0.05, 8, "kafka-direct"
	stats2, err := loadgen.Run(ctx, lg2, &loadgen.KafkaSink{Producer: prod, Topic: cfg.Topic})
	if err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s, db, cfg.Topic, 60*time.Second)
	if got := queryInt(t, db, "SELECT COUNT(*) FROM dead_letters") - dead; got != int64(stats2.Invalid) {
		t.Errorf("dead letters from Kafka = %d, want the %d invalid produced", got, stats2.Invalid)
	}
	if got := queryInt(t, db, "SELECT COUNT(*) FROM events"); got != int64(stats.Valid+stats2.Valid) {
		t.Errorf("events rows = %d, want %d", got, stats.Valid+stats2.Valid)
	}
	var dl struct {
		Topic  string `db:"topic"`
		Reason string `db:"reason"`
		Raw    []byte `db:"raw"`
	}
	if err := db.Get(&dl, "SELECT topic, reason, raw FROM dead_letters ORDER BY kafka_partition, kafka_offset LIMIT 1"); err != nil {
		t.Fatal(err)
	}
	if dl.Topic != cfg.Topic || dl.Reason == "" || len(dl.Raw) == 0 {
		t.Errorf("dead letter lacks coordinates or reason: %+v", dl)
	}
}

// TestRestartResumesExactly stops the whole stack while the consumer is
// mid-way through a backlog, starts it again on the same data, and checks
// the same exact totals.
func TestRestartResumesExactly(t *testing.T) {
	cfg, db, _ := newStackConfig(t, false)
	// Small batches so the backlog takes a while to drain.
	cfg.ConsumeOverrides.BatchSize = 100
	cfg.ConsumeOverrides.Writers = 1
	s := startStack(t, cfg)
	ctx := context.Background()

	lg := loadgen.DefaultConfig()
	lg.Count, lg.DuplicateRatio, lg.BadRatio, lg.Seed, lg.BatchSize, lg.RunID = 15000, 0.05, 0.01, 11, 1000, "restart1"
	stats, err := loadgen.Run(ctx, lg, &loadgen.HTTPSink{URL: s.Collector + "/v1/events", Client: &http.Client{Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	// Stop while the consumer is mid-stream.
	deadline := time.Now().Add(60 * time.Second)
	for queryInt(t, db, "SELECT COALESCE(SUM(next_offset),0) FROM kafka_offsets") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	before := queryInt(t, db, "SELECT COALESCE(SUM(next_offset),0) FROM kafka_offsets")
	stopStack(t, s)
	if before == 0 || before >= int64(stats.Accepted) {
		t.Fatalf("stopped at %d of %d messages: not mid-stream", before, stats.Accepted)
	}
	t.Logf("stopped after %d of %d messages were committed", before, stats.Accepted)

	// Again, on the same data dir, ports and database.
	s = startStack(t, cfg)
	defer stopStack(t, s)
	lg2 := lg
	lg2.Count, lg2.Seed, lg2.RunID = 3000, 12, "restart2"
	stats2, err := loadgen.Run(ctx, lg2, &loadgen.HTTPSink{URL: s.Collector + "/v1/events", Client: &http.Client{Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatalf("loadgen after restart: %v", err)
	}
	end := waitCaughtUp(t, s, db, cfg.Topic, 120*time.Second)
	var total int64
	for _, e := range end {
		total += e
	}
	if total != int64(stats.Accepted+stats2.Accepted) {
		t.Errorf("messages in Kafka = %d, want %d: the broker lost or duplicated data across the restart", total, stats.Accepted+stats2.Accepted)
	}
	valid := int64(stats.Valid + stats2.Valid)
	if got := queryInt(t, db, "SELECT COUNT(*) FROM events"); got != valid {
		t.Errorf("events rows = %d, want %d", got, valid)
	}
	if got := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute"); got != valid {
		t.Errorf("sum of counts = %d, want %d", got, valid)
	}
	if got := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute WHERE type = 'share'"); got != int64(stats.ValidByType["share"]+stats2.ValidByType["share"]) {
		t.Errorf("share counts = %d, want %d", got, stats.ValidByType["share"]+stats2.ValidByType["share"])
	}
	// Still one stream workflow execution chain, running.
	desc, err := s.Client.DescribeWorkflowExecution(ctx, devstack.StreamWorkflowID("default"), "")
	if err != nil || desc.WorkflowExecutionInfo.Status.String() != "Running" {
		t.Fatalf("stream workflow after restart: %v %v", desc, err)
	}
}

// TestBusyPortNamesTheFlag occupies the collector's port.
func TestBusyPortNamesTheFlag(t *testing.T) {
	cfg, _, _ := newStackConfig(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg.CollectorAddr = ln.Addr().String()
	_, err = devstack.Start(context.Background(), cfg)
	var busy *devstack.PortInUseError
	if !errors.As(err, &busy) || busy.Flag != "--collector-addr" || !strings.Contains(err.Error(), cfg.CollectorAddr) {
		t.Fatalf("error = %v, want a PortInUseError naming %s and --collector-addr", err, cfg.CollectorAddr)
	}
}
