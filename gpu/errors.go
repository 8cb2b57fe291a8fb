package gpu

import (
	"fmt"

	"github.com/gopyro/gopyro"
)

const (
	typeOOM         = "gpu.OutOfMemory"
	typeUnsupported = "gpu.Unsupported"
	typeExpr        = "gpu.ExprError"
	typeShape       = "gpu.ShapeError"
	typeDType       = "gpu.DTypeError"
	typeFreed       = "gpu.FreedArray"
	typeDivZero     = "gpu.DivideByZero"
	typeLaunch      = "gpu.LaunchError"
	typeArg         = "gpu.ArgumentError"
)

// Errors the service's calls fail with; match them with errors.Is. Each
// is a *gopyro.Error: its message says what was wrong, with the values.
var (
	// ErrOutOfMemory: an allocation would pass the service's total, the
	// session's or the array size limit (or the device is out of memory).
	ErrOutOfMemory = &gopyro.Error{Code: gopyro.CodeBusy, RemoteType: typeOOM}
	// ErrUnsupported: the backend cannot run the operation (custom
	// kernels on the CPU backend); the message names what would.
	ErrUnsupported = &gopyro.Error{Code: gopyro.CodeUnsupported, RemoteType: typeUnsupported}
	// ErrExpr: an expression does not parse (the message gives the
	// column), uses an unknown name or function, or does not type-check.
	ErrExpr = &gopyro.Error{Code: gopyro.CodeArgument, RemoteType: typeExpr}
	// ErrShape: the shapes of the operands do not fit the operation, or
	// data does not match its declared shape.
	ErrShape = &gopyro.Error{Code: gopyro.CodeArgument, RemoteType: typeShape}
	// ErrDType: the element types of the operands do not fit.
	ErrDType = &gopyro.Error{Code: gopyro.CodeArgument, RemoteType: typeDType}
	// ErrFreed: the array was freed (by Free, or its sessions ended), or
	// the reference is not an array of this service.
	ErrFreed = &gopyro.Error{Code: gopyro.CodeNotFound, RemoteType: typeFreed}
	// ErrDivideByZero: an integer division or remainder by zero.
	ErrDivideByZero = &gopyro.Error{Code: gopyro.CodeArgument, RemoteType: typeDivZero}
	// ErrLaunch: a kernel launch's grid or block does not fit, or the
	// kernel failed.
	ErrLaunch = &gopyro.Error{Code: gopyro.CodeArgument, RemoteType: typeLaunch}
)

func newErr(kind *gopyro.Error, format string, args ...any) *gopyro.Error {
	return &gopyro.Error{Code: kind.Code, RemoteType: kind.RemoteType, Op: "gpu", Message: fmt.Sprintf(format, args...)}
}

func errorf(code gopyro.Code, format string, args ...any) *gopyro.Error {
	return &gopyro.Error{Code: code, RemoteType: typeArg, Op: "gpu", Message: fmt.Sprintf(format, args...)}
}

// Errorf returns an error of kind (one of the Err variables) with a
// message: for backends.
func Errorf(kind *gopyro.Error, format string, args ...any) error {
	return newErr(kind, format, args...)
}
