package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/resilience"
)

// Storage holds what the storage admin routes call. Every route needs an
// admin token.
type Storage struct {
	Server      *Server
	Coordinator *resilience.Coordinator
}

// Routes returns the storage route table.
func (s *Storage) Routes() []Route {
	return []Route{
		{Method: "POST", Path: "/api/admin/backup", Access: Admin, Handler: s.backup, Body: protocol.BodyEmpty},
		{Method: "GET", Path: "/api/admin/dets-health", Access: Admin, Handler: s.health},
		{Method: "GET", Path: "/api/admin/storage-health", Access: Admin, Handler: s.health},
		{Method: "POST", Path: "/api/admin/compact", Access: Admin, Handler: s.compactAll, Body: protocol.BodyEmpty},
		{Method: "POST", Path: "/api/admin/compact/{table_name}", Access: Admin, Handler: s.compactOne, Body: protocol.BodyEmpty},
		{Method: "POST", Path: "/api/admin/restore/{table_name}", Access: Admin, Handler: s.restore, Body: protocol.BodyEmpty},
		{Method: "GET", Path: "/api/admin/backups/{table_name}", Access: Admin, Handler: s.backups},
		{Method: "POST", Path: "/api/admin/drill", Access: Admin, Handler: s.drill, Body: protocol.BodyEmpty},
		{Method: "POST", Path: "/api/admin/degraded/{table_name}/acknowledge", Access: Admin, Handler: s.acknowledge, Body: protocol.BodyEmpty},
	}
}

func (s *Storage) backup(r *Request) Response {
	resp, err := s.Coordinator.Backup(r.Context())
	if err != nil {
		return storageFailure(r, "backup_failed", err)
	}
	// Same body whatever happened; a run that missed any table is not a
	// success and says so with its status code too.
	if resp.Status != resilience.BackupComplete {
		return JSON(http.StatusInternalServerError, resp)
	}
	return JSON(http.StatusOK, resp)
}

func (s *Storage) health(*Request) Response { return JSON(http.StatusOK, s.Coordinator.Health()) }

func (s *Storage) compactAll(r *Request) Response {
	force, bad := queryBool(r, "force")
	if bad != nil {
		return *bad
	}
	resp, err := s.Coordinator.CompactAll(r.Context(), force)
	if err != nil {
		return storageFailure(r, "compaction_failed", err)
	}
	return JSON(http.StatusOK, resp)
}

func (s *Storage) compactOne(r *Request) Response {
	force, bad := queryBool(r, "force")
	if bad != nil {
		return *bad
	}
	resp, err := s.Coordinator.Compact(r.Context(), r.PathValue("table_name"), force)
	if ut := unknownTable(err); ut != nil {
		return *ut
	}
	if err != nil {
		return storageFailure(r, "compaction_failed", err)
	}
	return JSON(http.StatusOK, resp)
}

func (s *Storage) restore(r *Request) Response {
	dry, bad := queryBool(r, "dry_run")
	if bad != nil {
		return *bad
	}
	table := r.PathValue("table_name")
	resp, err := s.Coordinator.Restore(r.Context(), table, r.URL.Query().Get("backup"), dry)
	if ut := unknownTable(err); ut != nil {
		return *ut
	}
	switch {
	case err == nil:
		return JSON(http.StatusOK, resp)
	case errors.Is(err, resilience.ErrNoBackup):
		// Refused: nothing was touched.
		return storageRefusal(r, http.StatusConflict, "no_backup", table, err)
	case errors.Is(err, resilience.ErrBackupNotFound):
		return storageRefusal(r, http.StatusNotFound, "backup_not_found", table, err)
	case errors.Is(err, resilience.ErrBackupUnusable):
		return storageRefusal(r, http.StatusConflict, "backup_unusable", table, err)
	}
	// The result keeps what the restore did (aside copy, counts); its
	// error is a fixed text and the id of the log line holding the cause.
	id := NewErrorID()
	r.logger().Error("restore failed", "event", "internal_error", "error_id", id, "table", table, "err", err)
	if resp.Status == "" {
		resp.Status, resp.Table = "failed", table
	}
	resp.Error = storageDetails["restore_failed"]
	return JSON(http.StatusInternalServerError, restoreFailed{RestoreResponse: resp, ErrorID: id})
}

func (s *Storage) backups(r *Request) Response {
	table := r.PathValue("table_name")
	list, err := s.Coordinator.Backups(table)
	if ut := unknownTable(err); ut != nil {
		return *ut
	}
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.BackupList{Table: table, Backups: list})
}

func (s *Storage) drill(r *Request) Response {
	resp, err := s.Coordinator.Drill(r.Context())
	if err != nil {
		return storageFailure(r, "drill_failed", err)
	}
	return JSON(http.StatusOK, resp)
}

func (s *Storage) acknowledge(r *Request) Response {
	table := r.PathValue("table_name")
	err := s.Coordinator.AcknowledgeDegraded(table)
	if ut := unknownTable(err); ut != nil {
		return *ut
	}
	if errors.Is(err, resilience.ErrNotDegraded) {
		return Err(http.StatusConflict, "not_degraded", "table", table)
	}
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.TableStatus{Status: "acknowledged", Table: table})
}

// storageDetails are the fixed sentences of the storage admin codes; the
// cause is in the hub's log under the reply's error_id.
var storageDetails = map[string]string{
	"backup_failed":     "the backup could not run; the hub log has the cause under error_id",
	"compaction_failed": "the compaction could not run; the hub log has the cause under error_id",
	"drill_failed":      "the restore drill could not run; the hub log has the cause under error_id",
	"restore_failed":    "the restore failed; the hub log has the cause under error_id",
	"no_backup":         "no verified backup of this table exists",
	"backup_not_found":  "no backup of this table has that name",
	"backup_unusable":   "the backup fails verification",
}

// storageFailure is a 500 of a storage admin action: its code, a fixed
// detail and the error_id of the logged cause.
func storageFailure(r *Request, code string, err error) Response {
	return storageRefusal(r, http.StatusInternalServerError, code, "", err)
}

// storageRefusal answers a storage admin code with its fixed detail, and
// a restore refused before anything was touched with its table. The
// cause may name backup files or paths, so it is logged, not sent.
func storageRefusal(r *Request, status int, code, table string, err error) Response {
	return InternalWith(r, status, protocol.ErrorReply{Error: code, Detail: storageDetails[code], Table: table}, err)
}

// restoreFailed is a failed restore's result with the error_id of its
// logged cause.
type restoreFailed struct {
	resilience.RestoreResponse
	ErrorID string `json:"error_id"`
}

// unknownTable maps an unknown table id onto the original's 404, with the
// list of valid ids added.
func unknownTable(err error) *Response {
	var ut *resilience.UnknownTableError
	if !errors.As(err, &ut) {
		return nil
	}
	r := Err(http.StatusNotFound, "unknown_table", "table", ut.Table, "valid_tables", ut.Valid)
	return &r
}

func queryBool(r *Request, name string) (bool, *Response) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		resp := fieldErr(name, "expected true or false")
		return false, &resp
	}
	return b, nil
}

// ExternalStorage answers the storage admin routes for a store the hub
// does not maintain itself (PostgreSQL): health reports what applies
// there; backup, compaction, restore, drills and degraded-table
// acknowledgement answer 409 not_applicable with the reason, and change
// nothing.
type ExternalStorage struct {
	Server *Server
	// Driver names the store ("postgres").
	Driver string
	// Health reads the store's health.
	Health func(ctx context.Context) (any, error)
	// Reason says where maintenance is done instead.
	Reason string
}

// Routes returns the same route table as Storage.Routes.
func (s *ExternalStorage) Routes() []Route {
	routes := (&Storage{}).Routes()
	for i := range routes {
		if strings.HasSuffix(routes[i].Path, "-health") {
			routes[i].Handler = s.health
		} else {
			routes[i].Handler = s.notApplicable
		}
	}
	return routes
}

func (s *ExternalStorage) health(r *Request) Response {
	h, err := s.Health(r.Context())
	if err != nil {
		// The driver's error names hosts and may quote SQL: logged only.
		id := NewErrorID()
		r.logger().Error("storage health failed", "event", "internal_error", "error_id", id, "driver", s.Driver, "err", err)
		return Err(http.StatusServiceUnavailable, "storage_unreachable", "driver", s.Driver, "error_id", id)
	}
	return JSON(http.StatusOK, h)
}

func (s *ExternalStorage) notApplicable(*Request) Response {
	return Err(http.StatusConflict, "not_applicable", "driver", s.Driver, "reason", s.Reason)
}
