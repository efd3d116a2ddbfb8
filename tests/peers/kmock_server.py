#!/usr/bin/env python3
"""Serves kmock's stateful Kubernetes emulator on loopback for the Kubernetes adapter's tests.

kmock ships no server command, and its emulator differs from a real API server in ways
that matter to a client like lifeboat. This launcher wraps it so that it behaves like a
real server where it can, and says where it still does not:

* metadata: every stored object gets ``uid``, ``creationTimestamp``, a growing
  ``resourceVersion`` and a ``generation`` that grows when the spec changes (kmock sets
  none of these, which breaks watchers and rollout checks);
* label selectors: ``labelSelector`` on lists and watches is honoured (kmock ignores it);
* watches: events after ``resourceVersion`` (kmock's watch subscribes late and misses
  live events), ending after ``timeoutSeconds``;
* server-side apply (``PATCH`` with ``application/apply-patch+yaml``) creates a missing
  object, as a real server does (kmock's apply is a plain merge that cannot create);
  it is still a merge, not a field-managed apply, and never answers 409 on a conflict;
* authentication: with ``--token`` (or after ``POST /__kmock/token``) every request must
  carry ``Authorization: Bearer <token>``, else it gets the real server's 401 Status;
* authorisation: ``POST /__kmock/forbid`` takes rules such as ``"delete deployments"``;
  matching requests get the real server's 403 Status, and SelfSubjectAccessReviews
  answer ``allowed`` accordingly;
* discovery: the built-in resources lifeboat uses are declared up front, so discovery
  finds them before any object exists;
* CustomResourceDefinitions: creating one serves its resources (each served version,
  with the status subresource it declares), as the real server does once the CRD is
  established; no schema validation, defaulting or pruning happens;
* core discovery names its group version `v1` (kmock says `/v1`, which kubectl cannot map).

Deletion is immediate whatever ``propagationPolicy`` says (there is no garbage collector
and no controller: Deployments get no status unless a test writes one to ``/status``).

Usage: kmock_server.py --port PORT [--host 127.0.0.1] [--token TOKEN]
"""

import argparse
import asyncio
import datetime
import itertools
import json
import re
import sys
import uuid

import aiohttp.web
import attrs
import kmock
from kmock._internal import enums

# (group/version/plural, kind, namespaced, subresources) served from the start.
BUILTIN_RESOURCES = [
    ('v1/namespaces', 'Namespace', False, []),
    ('v1/nodes', 'Node', False, ['status']),
    ('v1/pods', 'Pod', True, ['status']),
    ('v1/services', 'Service', True, ['status']),
    ('v1/configmaps', 'ConfigMap', True, []),
    ('v1/secrets', 'Secret', True, []),
    ('v1/serviceaccounts', 'ServiceAccount', True, []),
    ('apps/v1/deployments', 'Deployment', True, ['status', 'scale']),
    ('apps/v1/statefulsets', 'StatefulSet', True, ['status', 'scale']),
    ('apps/v1/daemonsets', 'DaemonSet', True, ['status']),
    ('batch/v1/jobs', 'Job', True, ['status']),
    ('coordination.k8s.io/v1/leases', 'Lease', True, []),
    ('events.k8s.io/v1/events', 'Event', True, []),
    ('v1/events', 'Event', True, []),
    ('rbac.authorization.k8s.io/v1/roles', 'Role', True, []),
    ('rbac.authorization.k8s.io/v1/rolebindings', 'RoleBinding', True, []),
    ('rbac.authorization.k8s.io/v1/clusterroles', 'ClusterRole', False, []),
    ('rbac.authorization.k8s.io/v1/clusterrolebindings', 'ClusterRoleBinding', False, []),
    ('policy/v1/poddisruptionbudgets', 'PodDisruptionBudget', True, ['status']),
    ('apiextensions.k8s.io/v1/customresourcedefinitions', 'CustomResourceDefinition', False, ['status']),
    ('authorization.k8s.io/v1/selfsubjectaccessreviews', 'SelfSubjectAccessReview', False, []),
]
VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']
ACTION_VERBS = {
    enums.action.LIST: 'list',
    enums.action.WATCH: 'watch',
    enums.action.FETCH: 'get',
    enums.action.CREATE: 'create',
    enums.action.UPDATE: 'patch',
    enums.action.DELETE: 'delete',
}
APPLY_CONTENT_TYPE = 'application/apply-patch+yaml'


def status(code, reason, message, details=None):
    """A response shaped like the real API server's `Status` errors."""
    body = {
        'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
        'message': message, 'reason': reason, 'code': code,
    }
    if details:
        body['details'] = details
    return aiohttp.web.json_response(body, status=code)


def parse_selector(text):
    """Parses a label selector into (key, op, values) requirements (the real grammar,
    less the set-based parentheses nesting that no client sends)."""
    requirements = []
    for part in re.findall(r'[^,(]+(?:\([^)]*\))?', text or ''):
        part = part.strip()
        if not part:
            continue
        if m := re.fullmatch(r'(\S+)\s+(in|notin)\s+\(([^)]*)\)', part):
            values = {v.strip() for v in m.group(3).split(',') if v.strip()}
            requirements.append((m.group(1), m.group(2), values))
        elif m := re.fullmatch(r'([^!=\s]+)\s*(==|!=|=)\s*(\S*)', part):
            op = '!=' if m.group(2) == '!=' else '='
            requirements.append((m.group(1), op, {m.group(3)}))
        elif part.startswith('!'):
            requirements.append((part[1:].strip(), '!exists', set()))
        else:
            requirements.append((part, 'exists', set()))
    return requirements


def matches(requirements, labels):
    labels = labels or {}
    for key, op, values in requirements:
        present = key in labels
        if op in ('=', 'in') and not (present and labels[key] in values):
            return False
        if op in ('!=', 'notin') and present and labels[key] in values:
            return False
        if op == 'exists' and not present:
            return False
        if op == '!exists' and present:
            return False
    return True


def merged(old, patch):
    """What kmock's merge makes of `old` after `patch` (dicts merge, the rest replaces)."""
    if not isinstance(old, dict) or not isinstance(patch, dict):
        return patch
    result = dict(old)
    for key, value in patch.items():
        result[key] = merged(old.get(key), value)
    return result


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator with the real server's metadata, selectors, apply and auth."""

    token: str | None = None
    forbidden: set = attrs.field(factory=set)
    _versions: itertools.count = attrs.field(factory=lambda: itertools.count(1))

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        for key, kind, namespaced, subresources in BUILTIN_RESOURCES:
            self.resources[key] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, verbs=VERBS, subresources=subresources)

    async def _render_error(self, exc):
        # kmock words its 404s and 409s its own way; a real server's reasons are
        # `NotFound` and `AlreadyExists`, and clients match on them.
        if isinstance(exc, kmock.KubernetesError) and exc.status in (404, 409):
            reason = 'NotFound' if exc.status == 404 else 'AlreadyExists'
            return status(exc.status, reason, exc.message or reason)
        return await super()._render_error(exc)

    async def _handle(self, request):
        path = request.url.path
        if path.startswith('/__kmock/'):
            return await self._control(path, request.data or {})
        if self.token is not None and request.headers.get('Authorization') != f'Bearer {self.token}':
            return status(401, 'Unauthorized', 'Unauthorized')
        if request.resource is not None and request.action is not None:
            verb = ACTION_VERBS.get(request.action)
            if f'{verb} {request.resource.plural}' in self.forbidden:
                return self._forbidden(request, verb)
            if request.resource.plural == 'selfsubjectaccessreviews' and request.action == enums.action.CREATE:
                return self._review(request.data or {})
            request = self._stamp(request)
            if request.resource.plural == 'customresourcedefinitions' and request.action == enums.action.CREATE:
                self._serve_crd(request.data or {})
        return await super()._handle(request)

    def _serve_crd(self, crd):
        spec = crd.get('spec') or {}
        names = spec.get('names') or {}
        for version in spec.get('versions') or []:
            if not version.get('served', True):
                continue
            key = f"{spec.get('group')}/{version.get('name')}/{names.get('plural')}"
            subresources = sorted((version.get('subresources') or {}).keys())
            self.resources[key] = kmock.ResourceInfo(
                kind=names.get('kind'), singular=names.get('singular'),
                shortnames=names.get('shortNames') or [], namespaced=spec.get('scope') == 'Namespaced',
                verbs=VERBS, subresources=subresources)

    async def _control(self, path, data):
        if path == '/__kmock/token':
            self.token = data.get('token')
            return aiohttp.web.json_response({'token_required': self.token is not None})
        if path == '/__kmock/forbid':
            self.forbidden = set(data.get('rules', []))
            return aiohttp.web.json_response({'forbidden': sorted(self.forbidden)})
        return status(404, 'NotFound', f'unknown control endpoint {path}')

    def _forbidden(self, request, verb):
        res = request.resource
        group = res.group or ''
        subject = 'system:serviceaccount:default:lifeboat'
        where = f' in the namespace "{request.namespace}"' if request.namespace else ' at the cluster scope'
        named = f'{res.plural}.{group} "{request.name}"' if group else f'{res.plural} "{request.name}"'
        target = named if request.name else res.plural if not group else f'{res.plural}.{group}'
        return status(403, 'Forbidden',
                      f'{target} is forbidden: User "{subject}" cannot {verb} resource '
                      f'"{res.plural}" in API group "{group}"{where}',
                      {'name': request.name or '', 'group': group, 'kind': res.plural})

    def _review(self, review):
        # A real server answers a SelfSubjectAccessReview from its authorizer and stores
        # nothing; this one answers from the forbid rules.
        attrs_ = (review.get('spec') or {}).get('resourceAttributes') or {}
        rule = f"{attrs_.get('verb')} {attrs_.get('resource')}"
        allowed = rule not in self.forbidden
        review = dict(review)
        review['status'] = {'allowed': allowed} if allowed else {
            'allowed': False, 'reason': f'forbidden by the emulator rule "{rule}"'}
        return aiohttp.web.json_response(review, status=201)

    def _stamp(self, request):
        """Adds the metadata a real server maintains to a create or update, and turns an
        apply of a missing object into a create (as server-side apply does)."""
        data = request.data if isinstance(request.data, dict) else None
        content_type = request.headers.get('Content-Type', '').split(';')[0].strip()
        key = (request.resource, request.namespace, request.name)
        stored = self.objects[key] if request.name is not None and key in self.objects else None
        exists = stored is not None and not stored.deleted
        version = str(next(self._versions))
        if request.action == enums.action.DELETE and exists:
            # A real server's DELETED event carries a newer resourceVersion; watchers
            # resuming from the last one they saw must not miss it.
            stored.patch({'metadata': {'resourceVersion': version}})
        if request.action == enums.action.UPDATE and content_type == APPLY_CONTENT_TYPE and not exists and data:
            data = dict(data)
            data['metadata'] = dict(data.get('metadata') or {}, name=request.name)
            if request.namespace:
                data['metadata']['namespace'] = request.namespace
            # kmock's handlers know a request by its identity, so it is amended in place.
            object.__setattr__(request, 'action', enums.action.CREATE)
            object.__setattr__(request, 'data', data)
        if request.action == enums.action.CREATE and data is not None:
            meta = dict(data.get('metadata') or {})
            if request.namespace:
                # A real server records the namespace of the URL in the object.
                meta['namespace'] = request.namespace
            meta.update(
                uid=str(uuid.uuid4()),
                creationTimestamp=datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ'),
                resourceVersion=version,
                generation=1,
            )
            object.__setattr__(request, 'data', dict(data, metadata=meta))
            return request
        if request.action == enums.action.UPDATE and data is not None and exists:
            meta = dict(data.get('metadata') or {}, resourceVersion=version)
            old = stored.raw
            generation = (old.get('metadata') or {}).get('generation') or 1
            old_spec = old.get('spec')
            if request.subresource is None and 'spec' in data and merged(old_spec, data['spec']) != old_spec:
                generation += 1
            meta['generation'] = generation
            object.__setattr__(request, 'data', dict(data, metadata=meta))
        return request

    async def _serve_version(self, request):
        # kmock names the core group's version `/v1`; a real server says `v1`, and
        # kubectl maps kinds by that name.
        result = await super()._serve_version(request)
        if isinstance(result, dict) and str(result.get('groupVersion', '')).startswith('/'):
            result = dict(result, groupVersion=result['groupVersion'][1:])
        return result

    async def _serve_list(self, request):
        result = await super()._serve_list(request)
        requirements = parse_selector(request.params.get('labelSelector'))
        items = [i for i in result['items'] if matches(requirements, (i.get('metadata') or {}).get('labels'))]
        limit = request.params.get('limit')
        if limit and limit.isdigit() and int(limit) > 0:
            items = items[:int(limit)]
        return dict(result, items=items, metadata={'resourceVersion': str(next(self._versions))})

    async def _serve_watch(self, request):
        """A watch as a real server serves it: events after `resourceVersion` (or the
        current objects first when none is given), filtered by namespace, name and labels,
        ending after `timeoutSeconds`. kmock's own watch subscribes to its event bus only
        after replaying the current objects and misses what happens meanwhile."""
        bus = self._buses[request.resource]
        marker = await bus.mark()
        try:
            yield b''
            requirements = parse_selector(request.params.get('labelSelector'))
            since = request.params.get('resourceVersion') or ''
            since = int(since) if since.isdigit() else 0

            def wanted(obj):
                meta = obj.get('metadata') or {}
                return ((request.namespace is None or meta.get('namespace') == request.namespace)
                        and (request.name is None or meta.get('name') == request.name)
                        and matches(requirements, meta.get('labels')))

            if not since:
                async with self._lock:
                    current = [o.raw for (res, _, _), o in self.objects.items()
                               if res == request.resource and not o.deleted]
                for obj in current:
                    if wanted(obj):
                        yield {'type': 'ADDED', 'object': obj}
            timeout = request.params.get('timeoutSeconds') or ''
            try:
                async with asyncio.timeout(int(timeout) if timeout.isdigit() else None):
                    async for event in bus.stream(since=marker):
                        obj = event.get('object') or {}
                        version = str((obj.get('metadata') or {}).get('resourceVersion') or '')
                        if version.isdigit() and int(version) <= since:
                            continue
                        if wanted(obj):
                            yield event
            except TimeoutError:
                return
        finally:
            await bus.unmark(marker)


async def serve(host, port, token):
    emulator = Emulator(token=token)
    async with emulator, kmock.Server(emulator, host=host, port=port) as server:
        print(f'kmock emulator serving on http://{server.host}:{server.port}', flush=True)
        await asyncio.Event().wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--token', default=None, help='require this bearer token')
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port, args.token))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == '__main__':
    main()
