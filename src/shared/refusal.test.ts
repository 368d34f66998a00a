import { describe, expect, it } from 'vitest';
import { issuePlace, placeIssues, refusalText } from './refusal';

describe('issuePlace', () => {
  it('says a value path in words, list positions counted from 1', () => {
    expect(issuePlace('sources.0.paths.1')).toBe('source 1, path 2');
    expect(issuePlace('identityFile')).toBe('identity file');
    expect(issuePlace('jump.identityFile')).toBe('jump, identity file');
    expect(issuePlace('tags.3')).toBe('tag 4');
    expect(issuePlace('services.stop.0')).toBe('services, stop 1');
    expect(issuePlace('monitoringRules.2.severity')).toBe('monitoring rule 3, severity');
    expect(issuePlace('addresses.0')).toBe('address 1');
    expect(issuePlace('entries.1')).toBe('entry 2');
    expect(issuePlace('0.name')).toBe('entry 1, name');
    expect(issuePlace('(input)')).toBe('');
  });
});

describe('placeIssues', () => {
  const fields = new Set(['name', 'paths', 'services.stop']);

  it('marks a field by its path less the prefix and list positions; the rest stay for the banner', () => {
    const issues = [
      { path: 'sources.2.paths.0', message: 'Paths on the device must be absolute' },
      { path: 'sources.2.paths.1', message: 'a second reason for the same field' },
      { path: 'sources.0.name', message: 'Duplicate name' },
      { path: 'sources.2.kind', message: 'Invalid kind' },
    ];
    const { marked, refusal } = placeIssues(issues, fields, 'sources.2.');
    expect(marked).toEqual({ paths: 'Paths on the device must be absolute' });
    expect(refusal).toEqual({ fields: 1, rest: [issues[2], issues[3]] });
  });

  it('keeps a dotted field name whole', () => {
    expect(placeIssues([{ path: 'services.stop.1', message: 'Too long' }], fields).marked).toEqual({ 'services.stop': 'Too long' });
  });

  it('marks nothing for a refusal without issues', () => {
    expect(placeIssues([], fields)).toEqual({ marked: {}, refusal: { fields: 0, rest: [] } });
  });
});

describe('refusalText', () => {
  it('points at the marked fields rather than repeating them', () => {
    expect(refusalText('Invalid device profile', { fields: 1, rest: [] })).toBe('Invalid device profile. The marked field says why.');
    expect(refusalText('Invalid settings', { fields: 2, rest: [] })).toBe('Invalid settings. The 2 marked fields say why.');
    // A message that says more than the field keeps it all.
    expect(refusalText('rvm-017: /k/id.pub is a public key: name its private key (/k/id).', { fields: 1, rest: [] })).toBe('rvm-017: /k/id.pub is a public key: name its private key (/k/id). The marked field says why.');
  });

  it('says in words the reasons no field shows', () => {
    expect(refusalText('Invalid device profile', { fields: 0, rest: [{ path: 'sources.1.paths.0', message: 'Paths on the device must be absolute' }] })).toBe(
      'Invalid device profile (source 2, path 1: Paths on the device must be absolute)',
    );
    expect(refusalText('One value was not accepted', { fields: 1, rest: [{ path: '(input)', message: 'Nothing to change' }] })).toBe(
      'One value was not accepted (Nothing to change). The marked field says the rest.',
    );
  });

  it('is the bare message for an error with no reasons', () => {
    expect(refusalText('The device refused this key', { fields: 0, rest: [] })).toBe('The device refused this key');
  });
});
