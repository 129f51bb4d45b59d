// The shape helpers live with the kernels (src/kernels/shape.ts, a leaf module) so backends need
// nothing from autograd; re-exported here for the autograd front end and its callers.
export * from "../kernels/shape.ts";
