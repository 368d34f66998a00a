import { useAppStore } from './stores/app-store';

/**
 * Where a password or passphrase typed into the console is kept, as it is on this machine: the
 * dialogs said "the operating system's keychain" also where the secrets passphrase encrypts them
 * (the CLI, the test host, a desktop without a keyring), or where nothing can store them at all.
 */
export function useSecretsNote(): string {
  const secrets = useAppStore((s) => s.info?.secrets);
  switch (secrets) {
    case 'keychain':
      return "Stored encrypted by the operating system's keychain, never in plain text.";
    case 'passphrase':
      return 'Stored encrypted under the secrets passphrase (JETVAULT_SECRETS_PASSPHRASE), never in plain text.';
    case 'none':
      return 'Cannot be stored here: there is no keychain and no secrets passphrase (JETVAULT_SECRETS_PASSPHRASE) to encrypt it with — use an SSH key or agent instead.';
    default:
      return 'Stored encrypted, never in plain text.';
  }
}
