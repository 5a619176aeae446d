import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { classifyKubeError, isAlreadyExists, type KubeFailure, mayHaveLanded } from '../../src/kube/result.js';

function status(code: number, reason: string, message: string) {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
}

function apiError(code: number, body: unknown, headers: Record<string, string> = {}) {
  // The real client puts the Status JSON in `body` and a multi-line dump in `message`.
  return new ApiException(
    code,
    `HTTP-Code: ${code}\nMessage: Unknown API Status Code!\nBody: ${String(body)}\nHeaders: {}`,
    body,
    headers,
  );
}

describe('classifying Kubernetes API errors', () => {
  const cases: [string, unknown, KubeFailure][] = [
    [
      '500 is retryable',
      apiError(500, status(500, 'InternalError', 'etcd timeout')),
      { status: 500, retryable: true, reason: '500 InternalError etcd timeout' },
    ],
    [
      '503 with Retry-After is retryable and keeps the delay',
      apiError(503, status(503, 'ServiceUnavailable', 'busy'), { 'retry-after': '9' }),
      { status: 503, retryable: true, reason: '503 ServiceUnavailable busy', retryAfterSeconds: 9 },
    ],
    [
      '429 is retryable',
      apiError(429, status(429, 'TooManyRequests', 'slow down')),
      { status: 429, retryable: true, reason: '429 TooManyRequests slow down' },
    ],
    [
      '403 is not',
      apiError(403, status(403, 'Forbidden', 'cannot create resource "workflows"')),
      { status: 403, retryable: false, reason: '403 Forbidden cannot create resource "workflows"' },
    ],
    [
      '404 is not',
      apiError(404, status(404, 'NotFound', 'the server could not find the requested resource')),
      { status: 404, retryable: false, reason: '404 NotFound the server could not find the requested resource' },
    ],
    [
      '422 is not',
      apiError(422, status(422, 'Invalid', 'spec.entryPoint: unknown field')),
      { status: 422, retryable: false, reason: '422 Invalid spec.entryPoint: unknown field' },
    ],
    ['401 without a body is not', apiError(401, undefined), { status: 401, retryable: false, reason: '401' }],
    [
      'a non-JSON body keeps only its first line',
      apiError(400, 'bad\nrequest'),
      { status: 400, retryable: false, reason: '400 bad' },
    ],
    [
      'a refused connection is retryable, without a status',
      Object.assign(new Error('request to https://k8s failed, reason: connect ECONNREFUSED'), {
        code: 'ECONNREFUSED',
        type: 'system',
      }),
      { cause: 'connection', retryable: true, reason: 'connection: ECONNREFUSED', code: 'ECONNREFUSED' },
    ],
    [
      'a reset nested in cause is retryable',
      new Error('fetch failed', { cause: Object.assign(new Error('socket'), { code: 'ECONNRESET' }) }),
      { cause: 'connection', retryable: true, reason: 'connection: ECONNRESET', code: 'ECONNRESET' },
    ],
    [
      'an abort is a timeout',
      Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }),
      { cause: 'timeout', retryable: true, reason: 'timeout' },
    ],
  ];
  for (const [what, error, expected] of cases) {
    it(what, () => assert.deepEqual(classifyKubeError(error), expected));
  }

  it('never returns a multi-line reason', () => {
    assert.ok(!classifyKubeError(apiError(500, status(500, 'InternalError', 'x'))).reason.includes('\n'));
  });

  it('takes a 409 AlreadyExists for this very name as the retry of a create that landed, and nothing else', () => {
    const exists = (name: string) => ({
      ...(JSON.parse(status(409, 'AlreadyExists', `workflows.argoproj.io "${name}" already exists`)) as object),
      details: { name, group: 'argoproj.io', kind: 'workflows' },
    });
    assert.equal(isAlreadyExists(apiError(409, JSON.stringify(exists('x'))), 'x'), true);
    assert.equal(isAlreadyExists(apiError(409, exists('x')), 'x'), true, 'a Status already parsed');
    assert.equal(isAlreadyExists(apiError(409, exists('y')), 'x'), false, 'another name');
    assert.equal(isAlreadyExists(apiError(409, status(409, 'Conflict', 'the object has been modified')), 'x'), false);
    assert.equal(isAlreadyExists(apiError(409, '<html><body>409 Conflict</body></html>'), 'x'), false);
    assert.equal(isAlreadyExists(apiError(409, ''), 'x'), false, 'no body');
    assert.equal(
      isAlreadyExists(apiError(409, { reason: 'AlreadyExists', details: { name: 'x' } }), 'x'),
      false,
      'not a Status',
    );
    assert.equal(isAlreadyExists(apiError(500, status(500, 'InternalError', 'x')), 'x'), false);
    assert.equal(isAlreadyExists(new Error('connect ECONNREFUSED'), 'x'), false);
  });

  it('says which failures may have left a Workflow behind', () => {
    assert.equal(mayHaveLanded(classifyKubeError(apiError(503, status(503, 'ServiceUnavailable', 'x')))), false);
    assert.equal(mayHaveLanded(classifyKubeError(apiError(500, status(500, 'InternalError', 'x')))), false);
    assert.equal(mayHaveLanded(classifyKubeError(apiError(429, status(429, 'TooManyRequests', 'x')))), false);
    assert.equal(mayHaveLanded(classifyKubeError(apiError(409, 'proxy'))), false);
    assert.equal(mayHaveLanded(classifyKubeError(apiError(504, status(504, 'Timeout', 'x')))), true);
    assert.equal(mayHaveLanded(classifyKubeError(apiError(502, 'bad gateway'))), true);
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    assert.equal(mayHaveLanded(classifyKubeError(refused)), false);
    assert.equal(mayHaveLanded(classifyKubeError(reset)), true);
    assert.equal(mayHaveLanded(classifyKubeError(new Error('something odd'))), true, 'unknown: assume it may');
  });
});
