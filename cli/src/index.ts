export { ERROR_TABLE, EXIT } from '@edgeship/protocol';
export { buildProgram, runCli } from './cli.ts';
export { CliError, NoTokenError } from './commands/output.ts';
export { type PublishOptions, type PublishResult, publishModel } from './publish/publish.ts';
export { quantizeTfjs, readTfjsModel } from './publish/tfjs.ts';
export { quantizeOnnx } from './quantize/quantize-onnx.ts';
export { GateError } from './validate/gate-error.ts';
export { summarizeValidation } from './validate/gates.ts';
export { validateOnnx } from './validate/validate-onnx.ts';
