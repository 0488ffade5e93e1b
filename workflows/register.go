package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register registers every workflow under its durable name.
func Register(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(StreamIngestWorkflow, workflow.RegisterOptions{Name: StreamIngestName})
	r.RegisterWorkflowWithOptions(DeadLetterReplayWorkflow, workflow.RegisterOptions{Name: DeadLetterReplayName})
	r.RegisterWorkflowWithOptions(PartitionMaintenanceWorkflow, workflow.RegisterOptions{Name: PartitionMaintenanceName})
	r.RegisterWorkflowWithOptions(ReconcileWorkflow, workflow.RegisterOptions{Name: ReconcileName})
	r.RegisterWorkflowWithOptions(MiningWorkflow, workflow.RegisterOptions{Name: MiningName})
	r.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillName})
}
