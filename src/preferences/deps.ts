import type { VersionedKey } from '../config/secrets.js';
import type { SignupDeps } from '../forms/index.js';

/** What the withdrawal services need: no transport, no settings. */
export type WithdrawalDeps = Pick<SignupDeps, 'db' | 'clock' | 'newId'> & {
  keys: Pick<SignupDeps['keys'], 'masterKeys' | 'suppressionKeys'>;
};

/** What the preference centre needs: the sign-up services' deps plus the keys that sign links. */
export interface PreferenceDeps extends SignupDeps {
  linkKeys: VersionedKey[];
}
