export { buildProgram, runCli } from './cli.ts';
export { CliError, EXIT } from './commands/output.ts';
export { GateError, type PublishOptions, type PublishResult, publishModel } from './publish/publish.ts';
export { quantizeTfjs, readTfjsModel } from './publish/tfjs.ts';
export { quantizeOnnx } from './quantize/quantize-onnx.ts';
export { summarizeValidation, validateOnnx } from './validate/validate-onnx.ts';
