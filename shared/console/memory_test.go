package console_test

import (
	"testing"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/console/consoletest"
)

func TestMemoryRecordsConformance(t *testing.T) {
	consoletest.Run(t, func(t *testing.T, l console.RecordLimits) console.Records {
		return console.NewMemoryRecords(l)
	})
}
