import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { classifyKubeError, type SubmitResult } from '../src/errors.js';

function status(code: number, reason: string, message: string) {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
}

function apiError(code: number, body: unknown, headers: Record<string, string> = {}) {
  // The real client puts the Status JSON in `body` and a multi-line dump in `message`.
  return new ApiException(code, `HTTP-Code: ${code}\nMessage: Unknown API Status Code!\nBody: ${String(body)}\nHeaders: {}`, body, headers);
}

describe('classifying Kubernetes API errors', () => {
  const cases: [string, unknown, SubmitResult][] = [
    ['409 AlreadyExists counts as existing', apiError(409, status(409, 'AlreadyExists', 'workflows.argoproj.io "x" already exists')), { kind: 'exists' }],
    ['500 is transient', apiError(500, status(500, 'InternalError', 'etcd timeout')), { kind: 'transient', reason: '500 InternalError etcd timeout' }],
    ['503 with Retry-After is transient and keeps the delay', apiError(503, status(503, 'ServiceUnavailable', 'busy'), { 'retry-after': '9' }), { kind: 'transient', reason: '503 ServiceUnavailable busy', retryAfterSeconds: 9 }],
    ['429 is transient', apiError(429, status(429, 'TooManyRequests', 'slow down')), { kind: 'transient', reason: '429 TooManyRequests slow down' }],
    ['403 is permanent', apiError(403, status(403, 'Forbidden', 'cannot create resource "workflows"')), { kind: 'permanent', status: 403, reason: '403 Forbidden cannot create resource "workflows"' }],
    ['404 is permanent', apiError(404, status(404, 'NotFound', 'the server could not find the requested resource')), { kind: 'permanent', status: 404, reason: '404 NotFound the server could not find the requested resource' }],
    ['422 is permanent', apiError(422, status(422, 'Invalid', 'spec.entryPoint: unknown field')), { kind: 'permanent', status: 422, reason: '422 Invalid spec.entryPoint: unknown field' }],
    ['401 without a body is permanent', apiError(401, undefined), { kind: 'permanent', status: 401, reason: '401' }],
    ['a non-JSON body keeps only its first line', apiError(400, 'bad\nrequest'), { kind: 'permanent', status: 400, reason: '400 bad' }],
    ['a refused connection is transient', Object.assign(new Error('request to https://k8s failed, reason: connect ECONNREFUSED'), { code: 'ECONNREFUSED', type: 'system' }), { kind: 'transient', reason: 'connection: ECONNREFUSED' }],
    ['a reset nested in cause is transient', new Error('fetch failed', { cause: Object.assign(new Error('socket'), { code: 'ECONNRESET' }) }), { kind: 'transient', reason: 'connection: ECONNRESET' }],
    ['an abort is a timeout', Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }), { kind: 'transient', reason: 'timeout' }],
  ];
  for (const [what, error, expected] of cases) {
    it(what, () => assert.deepEqual(classifyKubeError(error), expected));
  }

  it('never returns a multi-line reason', () => {
    const result = classifyKubeError(apiError(500, status(500, 'InternalError', 'x')));
    assert.ok(result.kind === 'transient' && !result.reason.includes('\n'));
  });
});
