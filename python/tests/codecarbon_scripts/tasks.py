# A script written against CodeCarbon's documented API (tasks, the tracker object, the
# returned emissions). The test runs it unchanged except for its codecarbon import line.
import time

from codecarbon import EmissionsTracker


def work(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def main():
    tracker = EmissionsTracker(project_name="cc_tasks", measure_power_secs=0.1, log_level="error")
    tracker.start()
    tracker.start_task("prepare")
    work(0.2)
    tracker.stop_task()
    for i in range(2):
        tracker.start_task("infer" + str(i))
        work(0.2)
        tracker.stop_task()
    emissions = tracker.stop()
    print(f"Emissions : {1000 * emissions} g CO2")
    for name, task in tracker._tasks.items():
        print(f"{name}: {1000 * task.emissions_data.emissions} g CO2 in {task.emissions_data.duration} s")
        print(f"\tCPU {task.emissions_data.cpu_power:.0f} W, {1000 * task.emissions_data.energy_consumed} Wh")


if __name__ == "__main__":
    main()
