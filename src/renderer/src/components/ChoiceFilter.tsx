/**
 * A filter that narrows a list to one of the values it holds (a site, a tag, a device…), or shows
 * them all: the empty value. Used by the pages' `.filters` rows.
 */
export function ChoiceFilter({ label, all, choices, value, onChange, testId }: { label: string; all: string; choices: readonly string[]; value: string; onChange: (value: string) => void; testId: string }) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId}>
        <option value="">{all}</option>
        {choices.map((choice) => (
          <option key={choice} value={choice}>
            {choice}
          </option>
        ))}
      </select>
    </label>
  );
}
