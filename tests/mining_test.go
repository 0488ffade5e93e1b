package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/sluicedata/sluice/internal/mining"
	"github.com/sluicedata/sluice/internal/testutil/miningdata"
	"github.com/sluicedata/sluice/workflows"
)

// TestMiningWorkflowEndToEnd: the hand-checked dataset goes in through the
// collector and the stream; the default schedules exist; the hourly
// trending schedule, triggered, and a chained co_share → recommend run give
// exactly the hand-worked results; recommend without any co_share run
// fails cleanly.
func TestMiningWorkflowEndToEnd(t *testing.T) {
	cfg, db, _ := newStackConfig(t, false)
	s := startStack(t, cfg)
	defer stopStack(t, s)
	ctx := context.Background()

	today := time.Now().UTC().Truncate(24 * time.Hour)
	var body bytes.Buffer
	for _, e := range miningdata.Events(today, "mine-") {
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		body.Write(append(line, '\n'))
	}
	resp, err := http.Post(s.Collector+"/v1/events", "application/x-ndjson", &body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("collector answered %d", resp.StatusCode)
	}
	waitCaughtUp(t, s, db, cfg.Topic, 60*time.Second)

	execute := func(in workflows.MiningInput) (workflows.MiningResult, error) {
		run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.DefaultTaskQueue}, workflows.MiningName, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.MiningResult
		err = run.Get(ctx, &res)
		return res, err
	}
	if _, err := execute(workflows.MiningInput{Jobs: []string{mining.JobRecommend}}); err == nil || !strings.Contains(err.Error(), "no published co_share run") {
		t.Fatalf("recommend before any co_share: %v, want a clear failure", err)
	}

	for _, id := range []string{"mining-trending", "mining-co-share-recommend", "partition-maintenance"} {
		desc, err := s.Client.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
		if err != nil {
			t.Fatalf("default schedule %s: %v", id, err)
		}
		if desc.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP {
			t.Errorf("schedule %s overlap = %v, want skip", id, desc.Schedule.Policy.Overlap)
		}
	}
	h := s.Client.ScheduleClient().GetHandle(ctx, "mining-trending")
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		d, err := h.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Info.RecentActions) > 0 {
			a := d.Info.RecentActions[0].StartWorkflowResult
			var res workflows.MiningResult
			if err := s.Client.GetWorkflow(ctx, a.WorkflowID, a.FirstExecutionRunID).Get(ctx, &res); err != nil {
				t.Fatalf("scheduled trending run: %v", err)
			}
			if len(res.Runs) != 1 || res.Runs[0].Pieces != 2 || res.Runs[0].Stats.RowsIn != miningdata.Shares {
				t.Fatalf("scheduled trending run: %+v", res)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("triggered trending schedule did not run within 60 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := miningdata.Rows(t, db, "SELECT day, city, rank_no, item_id, users, shares FROM trending_daily ORDER BY day, city, rank_no"); got != miningdata.Trending(today) {
		t.Fatalf("trending_daily:\n%s\nwant:\n%s", got, miningdata.Trending(today))
	}

	res, err := execute(workflows.MiningInput{Jobs: []string{mining.JobCoShare, mining.JobRecommend}, LookbackDays: 1,
		Params: mining.Params{K: 3, Shards: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 2 || res.Runs[0].Stats.RowsOut != 6 || res.Runs[1].Stats.RowsOut != miningdata.RecommendationRows || res.Runs[1].Pieces != 3 {
		t.Fatalf("co_share → recommend: %+v", res)
	}
	if got := miningdata.Rows(t, db, "SELECT item_id, rank_no, other_item_id, support, confidence, lift FROM co_shares WHERE run_id = ? ORDER BY item_id, rank_no", res.Runs[0].RunID); got != miningdata.CoShares {
		t.Fatalf("co_shares:\n%s\nwant:\n%s", got, miningdata.CoShares)
	}
	if got := miningdata.Rows(t, db, "SELECT user_id, rank_no, item_id, score, reason, via FROM recommendations WHERE run_id = ? ORDER BY user_id, rank_no", res.Runs[1].RunID); got != miningdata.Recommendations {
		t.Fatalf("recommendations:\n%s\nwant:\n%s", got, miningdata.Recommendations)
	}
	if got := miningdata.Rows(t, db, "SELECT job, status, window_from = window_to, rows_out FROM mining_runs WHERE status = 'succeeded' ORDER BY run_id"); got != "trending succeeded 0 14\nco_share succeeded 1 6\nrecommend succeeded 1 11" {
		t.Fatalf("mining_runs:\n%s", got)
	}
}
