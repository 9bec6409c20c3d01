package bench

import "testing"

// With --batch, the flood goes through POST /api/tasks/batch: every task
// of the last, partial batch is submitted and completed too.
func TestTasksScenarioBatch(t *testing.T) {
	o := tiny(t, ScenarioTasks)
	o.Tasks, o.Batch = 45, 10
	res := runOne(t, o)
	if v := figure(t, res, "throughput").Value; v <= 0 {
		t.Errorf("throughput = %v", v)
	}
	if got := res.Params["batch"]; got != 10 {
		t.Errorf("batch param = %v", got)
	}
	if v := figure(t, res, "errors").Value; v != 0 {
		t.Errorf("error frames = %v", v)
	}
}
