// Which backend new tensors go to; the state lives in src/kernels/default.ts (kernels import
// nothing from autograd), re-exported here for the autograd front end.
export { cpu, defaultBackend, onBackend, setDefaultBackend } from "../kernels/default.ts";
