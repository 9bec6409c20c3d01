package gitflow

import (
	"testing"

	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }
